"""The baselines for bench/rank_bench.py: bare Flask endpoints, no auth, no schemas, no ORM session.

- ``GET /page?board=&column=&scope_id=``: the raw indexed SQL for one leaderboard page (top 50 with the
  member's and branch's names) on the same PostgreSQL, ranks computed over the page in Python.
- ``GET /rank?key=&member=``: Redis ``ZREVRANK`` + ``ZSCORE`` (one pipelined round trip) on a sorted set
  the bench loaded with the same scores (Redis DB 15 by default).

Run by the bench as ``gunicorn -w 2 --pythonpath bench rank_baseline:app`` with BENCH_DATABASE_URL and
BENCH_REDIS_URL set.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, abort, jsonify, request

SCOPE_COLUMNS = {"all": None, "district_id": "district_id", "community_id": "community_id"}
PAGE_SQL = """
SELECT b.subject_id, b.score, b.reached_at, m.name, m.show_on_boards, o.name AS org
FROM board_scores b JOIN members m ON m.id = b.subject_id LEFT JOIN organizations o ON o.id = b.branch_id
WHERE b.board = :board AND b.subject_type = 'member' {scope}
ORDER BY b.score DESC, b.reached_at ASC NULLS LAST, b.subject_id LIMIT 50"""
PAGES = {name: sa.text(PAGE_SQL.format(scope=f"AND b.{column} = :scope_id" if column else ""))
         for name, column in SCOPE_COLUMNS.items()}

app = Flask(__name__)
engine = sa.create_engine(os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/points_bench"))
_redis = None


def redis_client():
    global _redis
    if _redis is None:
        import redis  # the bench's own dependency, not the service's
        _redis = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    return _redis


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/page")
def page():
    statement = PAGES.get(request.args.get("column", "all"))
    if statement is None:
        abort(400)
    with engine.connect() as connection:
        rows = connection.execute(statement, {"board": request.args["board"],
                                              "scope_id": request.args.get("scope_id", type=int)}).all()
    items, rank = [], 0
    for index, row in enumerate(rows):
        rank = rank if index and row.score == rows[index - 1].score else index + 1
        items.append({"rank": rank, "id": row.subject_id, "name": row.name if row.show_on_boards else "党员（已隐藏）",
                      "organization": row.org, "points": row.score / 100,
                      "reached_at": row.reached_at.isoformat() if row.reached_at else None})
    return jsonify({"items": items})


@app.get("/rank")
def rank():
    key, member = request.args["key"], request.args["member"]
    position, score = redis_client().pipeline(transaction=False).zrevrank(key, member).zscore(key, member).execute()
    if position is None:
        abort(404)
    return jsonify({"rank": position + 1, "points": score / 100})
