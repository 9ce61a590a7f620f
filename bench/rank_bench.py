"""Leaderboard and "my rank" benchmark (issue 5) on the generated city (bench/city_gen.py), over HTTP against
gunicorn and at SQL level, next to bare baselines measured in the same run.

    .venv/bin/python bench/rank_bench.py --json /tmp/rank_bench.json

What it measures, and why:
- (a) pages: GET /api/v1/leaderboards (top 50 with names) for a community, a district and the city, for a
  quarter and the standing score, as a member living there (so ``me`` is computed too), vs GET /page of
  bench/rank_baseline.py running the raw indexed SQL for the same page. Same gunicorn setup (-w 2, sync).
- (b) my rank: GET /api/v1/me/rank?scope=all (the caller's city-wide rank, points and the number ranked) for a
  random member vs GET /rank of the baseline (Redis ZREVRANK + ZSCORE, pipelined) on sorted sets loaded with
  the same scores. At 500k members (standing score; the quarter) and at 50k: a scratch board
  (``assessment:2031-Q1``, a period the city has no data for) holding every 10th member's standing row, with
  its histograms, deleted at the end.
- (c) GET /me (ranks in every scope for the quarter and the standing score, plus the profile and the home
  summary) vs (b).
- SQL level, in process: ``rank_of`` vs ``1 + COUNT(*)`` of higher scores vs Redis, and ``member_ranks``.
- Checks: rank_of == 1 + COUNT(*) on samples, the API's ``me`` too, pages equal the baseline's, Redis
  scores equal the board's. Exit status 1 if a check fails.
Serial runs (one client) give median and p99; concurrent runs (--concurrency clients) give throughput. Each
round runs the service then the baseline, scenario by scenario, so drift hits both. Redis DB --redis-db is
flushed at the end. The machine is shared and the client runs on the same cores: read ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from checkin_bench import Gunicorn, drive, machine  # noqa: E402  (bench/ is not a package)

QUARTER, STANDING_BOARD, SCRATCH_PERIOD = "2026-Q3", "standing:all", "2031-Q1"
SCRATCH_BOARD = f"assessment:{SCRATCH_PERIOD}"
HISTOGRAM_KEYS = {"city": "'city'", "district": "'district:' || district_id", "street": "'street:' || street_id",
                  "department": "'department:' || department_id"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serial", type=int, default=400, help="requests per serial (latency) run")
    parser.add_argument("--concurrent", type=int, default=800, help="requests per concurrent (throughput) run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sql-samples", type=int, default=2000, help="lookups per SQL-level series")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18741, help="service port; baseline uses port+1")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench", help="a city made by bench/city_gen.py (kept)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server (same host)")
    parser.add_argument("--redis-db", type=int, default=15, help="flushed before and after")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", help="run only the HTTP scenarios whose name contains this (e.g. 'GET /me'); "
                                       "skips the SQL-level series")
    return parser.parse_args()


def server_env(args) -> dict:
    url = f"{args.pg.replace('postgresql://', 'postgresql+psycopg://', 1)}/{args.database}"
    return {**os.environ, "POINTS_ENV": "development", "POINTS_DATABASE_URL": url, "BENCH_DATABASE_URL": url,
            "BENCH_REDIS_URL": f"{args.redis}/{args.redis_db}",
            "POINTS_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
            "POINTS_PHONE_HASH_KEY": "bench-phone-hash-key", "PYTHONPATH": str(ROOT)}


# -- data: scratch board, Redis, who asks -------------------------------------------------------------------

def vacuum_if_fresh(conn) -> str:
    """A board table just bulk-loaded has no visibility map yet, so its index-only scans (COUNT(*), pages)
    read the heap row by row until autovacuum gets to it: vacuum it first, as autovacuum would."""
    visible, pages = conn.execute("SELECT relallvisible, relpages FROM pg_class WHERE relname = 'board_scores'"
                                  ).fetchone()
    if pages and visible >= 0.9 * pages:
        return f"board_scores all-visible pages {visible}/{pages}: no vacuum needed"
    conn.commit()
    conn.autocommit = True
    started = time.perf_counter()
    conn.execute("VACUUM (ANALYZE) board_scores, board_buckets, board_fine")
    conn.autocommit = False
    return f"VACUUM (ANALYZE) of the board tables ({visible}/{pages} pages all-visible before): " \
           f"{time.perf_counter() - started:.0f} s"


def build_scratch_board(conn) -> int:
    """Every 10th member's standing row copied to a board of a period without data, with its histograms."""
    drop_scratch_board(conn)
    conn.execute("INSERT INTO board_scores SELECT %s, subject_type, subject_id, score, reached_at, district_id, "
                 "street_id, community_id, grid_id, branch_id, department_id, member_points, participants "
                 "FROM board_scores WHERE board = %s AND subject_type = 'member' AND subject_id %% 10 = 0",
                 (SCRATCH_BOARD, STANDING_BOARD))
    for table, value in (("board_buckets", "CASE WHEN score >= 0 THEN score / 100 ELSE -((-score + 99) / 100) END"),
                         ("board_fine", "score")):
        for key in HISTOGRAM_KEYS.values():
            conn.execute(f"INSERT INTO {table} SELECT board, {key}, {value}, count(*) FROM board_scores "
                         f"WHERE board = %s AND subject_type = 'member' AND {key} IS NOT NULL GROUP BY 1, 2, 3",
                         (SCRATCH_BOARD,))
    conn.commit()
    conn.autocommit = True  # statistics and visibility map, as autovacuum gives a real board's rows
    conn.execute("VACUUM (ANALYZE) board_scores, board_buckets, board_fine")
    conn.autocommit = False
    return conn.execute("SELECT count(*) FROM board_scores WHERE board = %s", (SCRATCH_BOARD,)).fetchone()[0]


def drop_scratch_board(conn) -> None:
    for table in ("board_scores", "board_buckets", "board_fine"):
        conn.execute(f"DELETE FROM {table} WHERE board = %s", (SCRATCH_BOARD,))
    conn.commit()


def load_redis(conn, client, boards: dict[str, str]) -> None:
    """One sorted set per board (member id → score in hundredths), loaded from the same board rows."""
    client.flushdb()
    for key, board in boards.items():
        with conn.cursor(name=f"load_{key.replace(':', '_')}") as cursor:
            cursor.execute("SELECT subject_id, score FROM board_scores WHERE board = %s AND subject_type = 'member'",
                           (board,))
            while rows := cursor.fetchmany(20_000):
                client.zadd(key, {str(member): score for member, score in rows})


def people(conn, rng: random.Random, boards: list[str], count: int) -> dict:
    """A viewer (a member on every measured board, with his community and district) and random members."""
    on_scratch = conn.execute("SELECT subject_id, community_id, district_id FROM board_scores WHERE board = %s "
                              "AND subject_type = 'member' AND subject_id %% 10 = 0 ORDER BY subject_id",
                              (STANDING_BOARD,)).fetchall()
    viewer, community, district = rng.choice(on_scratch)
    samples = {}
    for board in boards:
        ids = [row[0] for row in conn.execute("SELECT subject_id FROM board_scores WHERE board = %s AND "
                                              "subject_type = 'member'", (board,))]
        samples[board] = rng.sample(ids, min(count, len(ids)))
    wanted = {viewer, *(m for ids in samples.values() for m in ids)}
    users = dict(conn.execute("SELECT member_id, id FROM users WHERE member_id = ANY(%s)", (list(wanted),)))
    return {"viewer": viewer, "community": community, "district": district, "samples": samples, "users": users}


def bearers(app, user_ids) -> dict[int, dict]:
    from flask_jwt_extended import create_access_token
    with app.app_context():
        return {uid: {"Authorization": f"Bearer {create_access_token(identity=f'u:{uid}')}"} for uid in user_ids}


# -- HTTP scenarios -------------------------------------------------------------------------------------------

def page_scenarios(who, service, baseline, headers):
    scopes = {"community": (f"community:{who['community']}", "community_id", who["community"]),
              "district": (f"region:{who['district']}", "district_id", who["district"]), "city": ("all", "all", None)}
    scenarios = {}
    for period, board in ((QUARTER, f"assessment:{QUARTER}"), ("standing", STANDING_BOARD)):
        for name, (scope, column, scope_id) in scopes.items():
            api = f"{service}/api/v1/leaderboards?scope={scope}&period={period}&page_size=50"
            bare = f"{baseline}/page?board={board}&column={column}" + (f"&scope_id={scope_id}" if scope_id else "")
            scenarios[f"page {name} {period}"] = (lambda api=api: ("GET", api, {"headers": headers}),
                                                  lambda bare=bare: ("GET", bare, {}))
    return scenarios


def rank_scenarios(who, service, baseline, tokens, rng):
    def rank_call(period, members):
        return lambda: ("GET", f"{service}/api/v1/me/rank?scope=all&period={period}",
                        {"headers": tokens[who["users"][rng.choice(members)]]})

    def redis_call(key, members):
        return lambda: ("GET", f"{baseline}/rank?key={key}&member={rng.choice(members)}", {})
    scenarios = {}
    for period, board in (("standing", STANDING_BOARD), (QUARTER, f"assessment:{QUARTER}"),
                          (SCRATCH_PERIOD, SCRATCH_BOARD)):
        label = who["labels"][board]
        members = [m for m in who["samples"][board] if m in who["users"]]
        scenarios[f"my rank {label}"] = (rank_call(period, members), redis_call(board, members))
    members = [m for m in who["samples"][STANDING_BOARD] if m in who["users"]]
    scenarios["GET /me vs one rank"] = (
        lambda: ("GET", f"{service}/api/v1/me", {"headers": tokens[who["users"][rng.choice(members)]]}),
        rank_call("standing", members))
    return scenarios


def summarize(target, scenario, mode, round_, seconds, results) -> dict:
    latencies = sorted(latency for _, latency in results)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"target": target, "scenario": scenario, "mode": mode, "round": round_, "requests": len(results),
            "throughput": round(len(results) / seconds, 1), "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2), "errors": sum(status != 200 for status, _ in results),
            "load": round(os.getloadavg()[0], 2)}


def http_runs(args, scenarios: dict, refresh) -> list[dict]:
    """``refresh()`` re-mints the bearer tokens in place before each round (access tokens live 15 minutes)."""
    runs = []
    refresh()
    for calls in scenarios.values():  # warm-up, unrecorded
        for call in calls:
            drive([call] * 100, 4)
    for round_ in range(1, args.rounds + 1):
        refresh()
        for scenario, (service, other) in scenarios.items():
            for mode, count, concurrency in (("serial", args.serial, 1), ("concurrent", args.concurrent,
                                                                          args.concurrency)):
                for target, call in (("service", service), ("baseline", other)):
                    seconds, results = drive([call] * count, concurrency)
                    runs.append(summarize(target, scenario, mode, round_, seconds, results))
                    print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
    return runs


# -- checks and SQL-level series ------------------------------------------------------------------------------

def higher_count(conn, board: str, score: int) -> int:
    return 1 + conn.execute("SELECT count(*) FROM board_scores WHERE board = %s AND subject_type = 'member' "
                            "AND score > %s", (board, score)).fetchone()[0]


def check_pages(scenarios: dict) -> list[str]:
    import requests
    failures = []
    for name, (service, baseline) in scenarios.items():
        got = [(requests.request(m, u, **kw).json()) for m, u, kw in (service(), baseline())]
        mine = [(i["subject"]["id"], i["rank"]) for i in got[0]["data"]["items"]]
        bare = [(i["id"] if i["name"] != "党员（已隐藏）" else None, i["rank"]) for i in got[1]["items"]]
        if mine != bare or len(mine) != 50:
            failures.append(f"{name}: page differs from the raw SQL page")
    return failures


def check_ranks(conn, client, app, who, tokens, service, boards) -> list[str]:
    """rank_of, GET /me/rank and the leaderboard's ``me`` equal 1 + COUNT(*) of higher scores; Redis holds the
    same scores."""
    import requests

    from points_service.domain.boards.rank import rank_of
    from points_service.models import SubjectType
    failures = []
    with app.app_context():
        for board, period in boards.items():
            for member in who["samples"][board][:60]:
                rank, score = rank_of(board, SubjectType.MEMBER, member)
                if rank != higher_count(conn, board, score) or client.zscore(board, str(member)) != score:
                    failures.append(f"{board} member {member}: rank_of {rank} or Redis score differs")
            for member in [m for m in who["samples"][board] if m in who["users"]][:15]:
                card = requests.get(f"{service}/api/v1/me/rank?scope=all&period={period}",
                                    headers=tokens[who["users"][member]], timeout=30).json()["data"]
                me = requests.get(f"{service}/api/v1/leaderboards?scope=all&period={period}&page_size=1",
                                  headers=tokens[who["users"][member]], timeout=30).json()["data"]["me"]
                score = round(float(card["points"]) * 100)
                if not card["rank"] == me["rank"] == higher_count(conn, board, score):
                    failures.append(f"{board} member {member}: API rank {card['rank']} / me.rank {me['rank']} "
                                    "!= 1 + COUNT(*)")
    return failures


def timed(function, arguments) -> dict:
    latencies = []
    for argument in arguments[:100]:  # warm-up
        function(argument)
    for argument in arguments:
        started = time.perf_counter()
        function(argument)
        latencies.append(time.perf_counter() - started)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"n": len(latencies), "p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def lookups(conn, client, board: str) -> dict:
    """The ways to get one member's city-wide rank on ``board``, each a function of the member id."""
    from points_service.domain.boards.rank import ScopeKind, member_ranks, own_rank, rank_of
    from points_service.models import SubjectType
    pipe = client.pipeline(transaction=False)
    score_sql = "SELECT score FROM board_scores WHERE board = %s AND subject_type = 'member' AND subject_id = %s"
    series = {"Redis ZREVRANK+ZSCORE": lambda m: pipe.zrevrank(board, str(m)).zscore(board, str(m)).execute(),
              "rank_of (histograms)": lambda m: rank_of(board, SubjectType.MEMBER, m),
              "own_rank + total (GET /me/rank core)": lambda m: own_rank(board, m, ScopeKind.ALL, with_total=True),
              "1 + COUNT(*) higher": lambda m: higher_count(conn, board,
                                                            conn.execute(score_sql, (board, m)).fetchone()[0])}
    if board != SCRATCH_BOARD:
        series["member_ranks, every scope (GET /me core)"] = lambda m: member_ranks(m, [board])
    return series


def sql_series(args, conn, client, app, who) -> list[dict]:
    from points_service.db import db
    rows = []
    with app.app_context():
        for board, label in who["labels"].items():
            members = (who["samples"][board] * 4)[:args.sql_samples]
            for name, function in lookups(conn, client, board).items():
                n = members if "COUNT" not in name else members[:max(200, args.sql_samples // 4)]
                rows.append({"board": label, "series": name, **timed(function, n)})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
        db.session.rollback()
        db.engine.dispose()
    return rows


# -- report ---------------------------------------------------------------------------------------------------

def medians(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["mode"], run["target"]), []).append(run)
    return [{"scenario": s, "mode": m, "target": t, "rounds": len(g), "errors": sum(r["errors"] for r in g),
             **{k: statistics.median(r[k] for r in g) for k in ("throughput", "p50_ms", "p99_ms", "load")}}
            for (s, m, t), g in groups.items()]


def http_table(rows: list[dict]) -> str:
    by = {(r["scenario"], r["mode"], r["target"]): r for r in rows}
    lines = ["| scenario | service p50 / p99 ms | baseline p50 / p99 ms | p99 × baseline | service req/s | "
             "baseline req/s | req/s ÷ baseline | errors |", "|---|---|---|---|---|---|---|---|"]
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        s, b = by[(scenario, "serial", "service")], by[(scenario, "serial", "baseline")]
        sc, bc = by[(scenario, "concurrent", "service")], by[(scenario, "concurrent", "baseline")]
        lines.append(f"| {scenario} | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} | {b['p50_ms']:.2f} / {b['p99_ms']:.2f} | "
                     f"{s['p99_ms'] / b['p99_ms']:.2f} | {sc['throughput']:.0f} | {bc['throughput']:.0f} | "
                     f"{sc['throughput'] / bc['throughput']:.2f} | {sum(r['errors'] for r in (s, b, sc, bc))} |")
    return "\n".join(lines)


def sql_table(rows: list[dict]) -> str:
    lines = ["| board | series | n | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['board']} | {r['series']} | {r['n']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    env = server_env(args)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    from points_service import create_app
    app, rng, info = create_app(), random.Random(args.seed), machine()
    conn = psycopg.connect(f"{args.pg}/{args.database}")
    client = redis.Redis.from_url(f"{args.redis}/{args.redis_db}")
    info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    info["redis"] = client.info("server")["redis_version"]
    print(json.dumps(info, ensure_ascii=False), flush=True)
    servers, logs = [], Path(tempfile.mkdtemp(prefix="rank_bench_"))
    boards = {f"assessment:{QUARTER}": QUARTER, STANDING_BOARD: "standing", SCRATCH_BOARD: SCRATCH_PERIOD}
    try:
        info["vacuum"] = vacuum_if_fresh(conn)
        print(info["vacuum"], flush=True)
        info["scratch_rows"] = build_scratch_board(conn)
        load_redis(conn, client, {board: board for board in boards})
        who = people(conn, rng, list(boards), 2000)
        tokens = bearers(app, list(who["users"].values()))
        info["board_rows"] = {b: conn.execute("SELECT count(*) FROM board_scores WHERE board = %s AND subject_type = "
                                              "'member'", (b,)).fetchone()[0] for b in boards}
        who["labels"] = {board: f"{board} ({rows:,} members)" for board, rows in info["board_rows"].items()}
        print(json.dumps(info, ensure_ascii=False), flush=True)
        service = Gunicorn(["wsgi:app"], args.port, args.workers, env, logs / "service.log")
        servers.append(service)
        baseline = Gunicorn(["--pythonpath", "bench", "rank_baseline:app"], args.port + 1, args.workers, env,
                            logs / "baseline.log")
        servers.append(baseline)
        pages = page_scenarios(who, service.url, baseline.url, tokens[who["users"][who["viewer"]]])
        failures = check_pages(pages) + check_ranks(conn, client, app, who, tokens, service.url, boards)
        print("checks:", failures or "all passed", flush=True)
        scenarios = {**pages, **rank_scenarios(who, service.url, baseline.url, tokens, rng)}
        runs = http_runs(args, {name: calls for name, calls in scenarios.items() if (args.only or "") in name},
                         lambda: tokens.update(bearers(app, list(who["users"].values()))))
        for server in servers:
            server.stop()
        sql_rows = [] if args.only else sql_series(args, conn, client, app, who)
    finally:
        for server in servers:
            server.stop()
        drop_scratch_board(conn)
        client.flushdb()
    rows = medians(runs)
    print(f"\nmedians over {args.rounds} round(s); serial {args.serial} requests, concurrent {args.concurrent} at "
          f"{args.concurrency} clients; gunicorn -w {args.workers} (sync) for both; logs in {logs}\n")
    print(http_table(rows) + "\n\n" + sql_table(sql_rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": runs, "medians": rows, "sql": sql_rows,
                                         "failures": failures}, ensure_ascii=False, indent=1, default=str))
    return 1 if failures or any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
