"""积分超市 benchmark: POST /api/v1/shop/orders over HTTP against gunicorn on PostgreSQL, next to the bare
one-INSERT Flask endpoint (bench/baseline_app.py) in the same run, and the 200-for-10 race.

    .venv/bin/python bench/market_bench.py --requests 1000 --concurrency 16

- (Re)creates a throw-away database (default ``points_bench_market``) as bench/checkin_bench.py does and seeds
  one community, its admin and --requests members (plus 200 racers), each funded with redeemable points through
  the ledger's audited adjustment.
- Throughput: every member orders one unit of an unlimited item once (distinct members, so each order is a
  real debit, stock update, ledger entry and totals upsert); the baseline gets as many INSERTs from the same
  client. Runs alternate service/baseline --repeats times; medians are reported.
- Race: 200 distinct members order the last 10 units of an item at once; it checks 10 × 201, 190 × 409
  out_of_stock, stock 0, and times the whole storm.
The machine is shared and the client runs on the same cores: read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_app import TABLE_DDL  # noqa: E402
from checkin_bench import (  # noqa: E402  (the bench folder is not a package)
    Gunicorn,
    bearer_tokens,
    in_process_app,
    seed,
)

RACERS, LAST_UNITS = 200, 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="orders per repetition")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18741)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_market")
    return parser.parse_args()


def fund_and_stock(app, user_ids: list[int]) -> dict:
    """Points for every member and the bench's items (an unlimited one and one with the last 10 units)."""
    from points_service.db import db
    from points_service.domain.access import principal_for
    from points_service.domain.accounts.users import add_user
    from points_service.domain.ledger.corrections import adjust
    from points_service.models import ROLE_SCOPE, LedgerName, MarketItem, Member, Region, Role, SubjectType, User

    with app.app_context():
        admin = principal_for(add_user("bench_sysadmin", "correct-horse-42-bench",
                                       [(Role.ADMIN, ROLE_SCOPE[Role.ADMIN], None)]))
        db.session.commit()
        for user_id in user_ids:
            member_id = db.session.get(User, user_id).member_id
            adjust(admin, SubjectType.MEMBER, member_id, Decimal(100), "压测充值", ledger=LedgerName.REDEEMABLE,
                   request_key=f"bench-{member_id}")
        community = db.session.get(Member, db.session.get(User, user_ids[0]).member_id).community_id
        region = db.session.get(Region, community)
        unlimited = MarketItem(region_id=region.id, name="义务理发", price=Decimal(1), stock=None, sold=0)
        scarce = MarketItem(region_id=region.id, name="电饭煲", price=Decimal(10), stock=LAST_UNITS, sold=0)
        db.session.add_all([unlimited, scarce])
        db.session.commit()
        return {"unlimited": unlimited.id, "scarce": scarce.id}


def storm(calls: list, concurrency: int) -> tuple[float, list]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda call: call(), calls))
    return time.perf_counter() - started, results


def order_call(url: str, headers: dict, item_id: int):
    def call():
        response = requests.post(f"{url}/api/v1/shop/orders", json={"item_id": item_id}, headers=headers, timeout=30)
        return response.status_code, (response.json() or {}).get("code")
    return call


def baseline_call(url: str, n: int, repeat: int):
    def call():
        body = {"activity_id": 10_000 + repeat, "member_id": n, "lat": 0.0, "lng": 0.0}
        return requests.post(f"{url}/checkins", json=body, timeout=30).status_code, None
    return call


def stock_of(app, item_id: int) -> int:
    from points_service.db import db
    from points_service.models import MarketItem

    with app.app_context():
        stock = db.session.get(MarketItem, item_id).stock
        db.engine.dispose()
        return stock


def main() -> int:
    args = parse_args()
    app, env, schema = in_process_app(args)
    members = args.requests * args.repeats + RACERS
    world = seed(app, members)
    items = fund_and_stock(app, world.user_ids)
    with psycopg.connect(f"{args.pg}/{args.database}", autocommit=True) as conn:
        conn.execute(TABLE_DDL)
    tokens = bearer_tokens(app, world.user_ids)
    logs = Path(tempfile.mkdtemp(prefix="market-bench-"))
    servers = []
    try:
        service = Gunicorn(["wsgi:app"], args.port, args.workers, env, logs / "service.log")
        servers.append(service)
        baseline = Gunicorn(["--pythonpath", "bench", "baseline_app:app"], args.port + 1, args.workers, env,
                            logs / "baseline.log")
        servers.append(baseline)
        ours, bare = [], []
        for repeat in range(args.repeats):
            users = world.user_ids[repeat * args.requests:(repeat + 1) * args.requests]
            seconds, results = storm([order_call(service.url, tokens[u], items["unlimited"]) for u in users],
                                     args.concurrency)
            assert Counter(status for status, _ in results) == {201: len(users)}, Counter(results)
            ours.append(len(users) / seconds)
            seconds, results = storm([baseline_call(baseline.url, n, repeat) for n in range(len(users))],
                                     args.concurrency)
            assert Counter(status for status, _ in results) == {201: len(users)}, Counter(results)
            bare.append(len(users) / seconds)
        racers = world.user_ids[-RACERS:]
        race_seconds, results = storm([order_call(service.url, tokens[u], items["scarce"]) for u in racers], 40)
        outcome = Counter(results)
        assert outcome == {(201, "ok"): LAST_UNITS, (409, "out_of_stock"): RACERS - LAST_UNITS}, outcome
        assert stock_of(app, items["scarce"]) == 0
    finally:
        for server in servers:
            server.stop()
    service_rps, baseline_rps = statistics.median(ours), statistics.median(bare)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; schema: {schema}")
    print(f"orders: {args.requests} × {args.repeats}, concurrency {args.concurrency}, {args.workers} workers each")
    print(f"POST /shop/orders: {service_rps:.0f} req/s (runs: {', '.join(f'{r:.0f}' for r in ours)})")
    print(f"baseline one INSERT: {baseline_rps:.0f} req/s (runs: {', '.join(f'{r:.0f}' for r in bare)})")
    print(f"ratio service/baseline: {service_rps / baseline_rps:.2f}")
    print(f"race: {RACERS} members for the last {LAST_UNITS} units in {race_seconds:.2f} s -> {dict(outcome)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
