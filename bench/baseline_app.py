"""The baseline for bench/checkin_bench.py: a bare Flask endpoint doing one INSERT on the same PostgreSQL.

No auth, no schema validation, no ORM session: what any Flask + gunicorn + PostgreSQL app pays per
write. The gap to the real check-in endpoint is what the service's own work (JWT, user and activity
lookups, token and geofence checks, the impossible-travel query, the envelope) costs.

Run by the bench as ``gunicorn -w 2 --pythonpath bench baseline_app:app`` with BENCH_DATABASE_URL set.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, jsonify, request

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_baseline_checkins (
    id BIGSERIAL PRIMARY KEY,
    activity_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (activity_id, member_id)
)
"""
INSERT = sa.text("INSERT INTO bench_baseline_checkins (activity_id, member_id, lat, lng) "
                 "VALUES (:activity_id, :member_id, :lat, :lng) RETURNING id")

app = Flask(__name__)
engine = sa.create_engine(os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/points_bench"))


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/checkins")
def insert_checkin():
    body = request.get_json()
    with engine.begin() as connection:
        row_id = connection.execute(INSERT, {key: body[key] for key in ("activity_id", "member_id", "lat", "lng")})
    return jsonify({"id": row_id.scalar_one()}), 201
