"""The writes that credit points, over HTTP, next to the bare one-INSERT endpoint (bench/baseline_app.py) in the
same run: check-out, POST /records, an approval that credits, and a 积分超市 order.

    .venv/bin/python bench/writes_bench.py --requests 300 --concurrency 1,16 --repeats 3

- (Re)creates ``points_bench_writes`` (``--database``) as bench/checkin_bench.py does; seeds one community, its
  admin (the organizer), a branch secretary (the approver), --requests members, each funded with 100
  redeemable points, and an unlimited 积分超市 item at 1 point.
- Each repetition × concurrency runs, in order, each write against the service and then as many bare INSERTs
  against the baseline from the same client (interleaved, so drift hits both):
  ``checkout``  every member checks out of a fresh activity that ended 5 minutes ago (checked in at its start,
                written directly): hours credited to both ledgers, totals and boards;
  ``record``    every member reports 2 hours of ``member.self_service_hour`` (pending, nothing credited);
  ``approve``   the branch secretary approves those records one by one (credits both ledgers);
  ``order``     every member orders one unit (debits the redeemable ledger, stock, order, events).
- One unrecorded warm-up repetition first (at concurrency 4).
- Checks every answer (200/201), and at the end that point totals equal the ledger (``compare_totals``) and the
  boards equal a rebuild (``compare_boards``). Exit status 0 only if all held.
Medians over repetitions; ratios are throughput vs the baseline of the same run. Read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_app import TABLE_DDL  # noqa: E402
from checkin_bench import (  # noqa: E402  (the bench folder is not a package)
    ROOT,
    VENUE_LAT,
    VENUE_LNG,
    CodeScreen,
    Run,
    bearer_tokens,
    build_schema,
    drive,
    machine,
    make_app,
    recreate_database,
    seed,
    server_env,
    service_and_baseline,
    worker_setting,
)

WRITES = ("checkout", "record", "approve", "order")
EXPECTED = {"checkout": 200, "record": 201, "approve": 200, "order": 201}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="writes per run (= members seeded)")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(WRITES), help=f"comma-separated subset of {','.join(WRITES)}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per worker for both apps (above 1: gunicorn's gthread worker class)")
    parser.add_argument("--port", type=int, default=18751, help="service port; baseline uses port+1")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_writes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not 1 <= args.requests <= 5000 or not 1 <= args.repeats <= 10:
        parser.error("--requests must be 1..5000 and --repeats 1..10")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.only = [w for w in args.only.split(",") if w]
    if "approve" in args.only and "record" not in args.only:
        parser.error("approve needs record (it approves the records just submitted)")
    return args


# -- data ---------------------------------------------------------------------------------------------

def add_world(app, world) -> dict:
    """The approver, the members' points and the shop item; returns what the calls need."""
    from points_service.db import db
    from points_service.domain.access import principal_for
    from points_service.domain.accounts.users import add_user
    from points_service.domain.ledger.corrections import adjust
    from points_service.models import (
        ROLE_SCOPE,
        LedgerName,
        MarketItem,
        Organization,
        Role,
        SubjectType,
        User,
    )

    with app.app_context():
        branch = db.session.scalar(db.select(Organization).where(Organization.code == "BB1"))
        secretary = add_user("bench_secretary", "correct-horse-42-bench",
                             [(Role.BRANCH_SECRETARY, ROLE_SCOPE[Role.BRANCH_SECRETARY], branch.id)])
        admin = principal_for(add_user("bench_sysadmin", "correct-horse-42-bench",
                                       [(Role.ADMIN, ROLE_SCOPE[Role.ADMIN], None)]))
        db.session.commit()
        members = dict(db.session.execute(db.select(User.id, User.member_id).where(User.id.in_(world.user_ids))).all())
        for member_id in members.values():
            adjust(admin, SubjectType.MEMBER, member_id, Decimal(100), "压测充值", ledger=LedgerName.REDEEMABLE,
                   request_key=f"bench-{member_id}")
        item = MarketItem(region_id=world.community_id, name="义务理发", price=Decimal(1), stock=None, sold=0)
        db.session.add(item)
        db.session.commit()
        ids = {"secretary": secretary.id, "item": item.id, "members": members}
        db.engine.dispose()
        return ids


def ended_activity_with_checkins(app, community_id: int, member_ids: list[int]) -> tuple[int, dict[int, int]]:
    """An activity that ended 5 minutes ago (check-out open), everybody checked in at its start."""
    import secrets

    import sqlalchemy as sa

    from points_service.db import db, utcnow
    from points_service.models import Activity, ActivityStatus, Checkin, CheckinStatus

    with app.app_context():
        ends = utcnow() - timedelta(minutes=5)
        activity = Activity(community_id=community_id, title="固定服务日", item_code="member.activity_hour",
                            starts_at=ends - timedelta(hours=2), ends_at=ends, venue_lat=VENUE_LAT, venue_lng=VENUE_LNG,
                            radius_m=100, capacity=None, status=ActivityStatus.PUBLISHED,
                            checkin_secret=secrets.token_hex(32))
        db.session.add(activity)
        db.session.flush()
        db.session.execute(sa.insert(Checkin), [
            {"activity_id": activity.id, "member_id": m, "status": CheckinStatus.CHECKED_IN,
             "checked_in_at": activity.starts_at, "checkin_distance_m": 10, "review_reason": ""} for m in member_ids])
        checkins = dict(db.session.execute(sa.select(Checkin.member_id, Checkin.id)
                                           .where(Checkin.activity_id == activity.id)).all())
        db.session.commit()
        return activity.id, checkins


def pending_records(app, member_ids: list[int]) -> list[int]:
    from points_service.db import db
    from points_service.models import Record, RecordStatus

    with app.app_context():
        return list(db.session.scalars(db.select(Record.id).where(
            Record.subject_id.in_(member_ids), Record.status == RecordStatus.PENDING).order_by(Record.id)))


# -- calls --------------------------------------------------------------------------------------------

def write_calls(write, url, app, world, ids, bearers, organizer, secretary):
    users, members = world.user_ids, ids["members"]
    if write == "checkout":
        activity_id, checkins = ended_activity_with_checkins(app, world.community_id, list(members.values()))
        screen = CodeScreen(url, organizer)

        def checkout(user_id):
            body = {"token": screen.token(activity_id), "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG}
            return "POST", f"{url}/api/v1/checkins/{checkins[members[user_id]]}/checkout", {
                "json": body, "headers": bearers[user_id]}
        return [lambda u=u: checkout(u) for u in users]
    if write == "record":
        from points_service.db import utcnow
        body = {"item_code": "member.self_service_hour", "occurred_at": (utcnow() - timedelta(days=1)).isoformat(),
                "description": "为独居老人代购生活用品", "hours": 2}
        return [lambda u=u: ("POST", f"{url}/api/v1/records", {"json": body, "headers": bearers[u]}) for u in users]
    if write == "approve":
        return [lambda r=r: ("POST", f"{url}/api/v1/approvals/record:{r}/approve", {
            "json": {"comment": "属实"}, "headers": secretary}) for r in pending_records(app, list(members.values()))]
    return [lambda u=u: ("POST", f"{url}/api/v1/shop/orders", {"json": {"item_id": ids["item"]},
                                                                "headers": bearers[u]}) for u in users]


def baseline_calls(url, run_tag, count):
    return [lambda i=i: ("POST", f"{url}/checkins", {"json": {"activity_id": 100_000 + run_tag, "member_id": i,
                                                              "lat": 0.0, "lng": 0.0}}) for i in range(count)]


# -- main ---------------------------------------------------------------------------------------------

def measure_expecting(expected: int, target: str, concurrency: int, repeat: int, calls: list) -> Run:
    """As checkin_bench.measure, with ``non_201`` counting answers other than ``expected``."""
    seconds, results = drive(calls, concurrency)
    cuts = statistics.quantiles(sorted(latency for _, latency in results), n=100, method="inclusive")
    statuses = [status for status, _ in results]
    return Run(target, "-", concurrency, repeat, len(results), round(seconds, 3), round(len(results) / seconds, 1),
               round(cuts[49] * 1000, 1), round(cuts[98] * 1000, 1), sum(s != expected for s in statuses),
               sum(s >= 500 or s == 0 for s in statuses), True)


def measure_all(args, app, world, ids, service, baseline) -> list:
    runs, run_tag = [], 0
    organizer = bearer_tokens(app, [world.admin_user_id])[world.admin_user_id]
    for repeat in range(0, args.repeats + 1):  # repetition 0 warms both apps up and is not recorded
        for concurrency in args.concurrency if repeat else [4]:
            bearers = bearer_tokens(app, world.user_ids)  # fresh: access tokens live 15 minutes
            secretary = bearer_tokens(app, [ids["secretary"]])[ids["secretary"]]
            for write in args.only:
                run_tag += 1
                calls = write_calls(write, service.url, app, world, ids, bearers, organizer, secretary)
                runs.append(measure_expecting(EXPECTED[write], write, concurrency, repeat, calls))
                runs.append(measure_expecting(201, f"baseline:{write}", concurrency, repeat,
                                              baseline_calls(baseline.url, run_tag, len(calls))))
                for done in runs[-2:]:
                    print(json.dumps(asdict(done)), flush=True)
    return [run for run in runs if run.repeat]


def consistent(app) -> dict:
    from points_service.db import db
    from points_service.domain.boards.audit import compare_boards
    from points_service.domain.ledger.totals import compare_totals

    with app.app_context():
        result = {"totals_equal_ledger": not compare_totals(), "boards_equal_rebuild": not compare_boards()}
        db.session.rollback()
        db.engine.dispose()
        return result


def table(runs) -> str:
    lines = ["| write | concurrency | req/s | p50 ms | p99 ms | baseline req/s | baseline p50 / p99 ms | ratio req/s "
             "| ratio p99 | failed |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault((run.target, run.concurrency), []).append(run)
    med = {key: {k: statistics.median(getattr(r, k) for r in group) for k in ("throughput", "p50_ms", "p99_ms")}
           | {"failed": sum(r.non_201 for r in group)} for key, group in groups.items()}
    for (target, concurrency), ours in med.items():
        if target.startswith("baseline:"):
            continue
        base = med[(f"baseline:{target}", concurrency)]
        lines.append(f"| {target} | {concurrency} | {ours['throughput']:.0f} | {ours['p50_ms']:.1f} | "
                     f"{ours['p99_ms']:.1f} | {base['throughput']:.0f} | {base['p50_ms']:.1f} / {base['p99_ms']:.1f} | "
                     f"{ours['throughput'] / base['throughput']:.2f} | {ours['p99_ms'] / base['p99_ms']:.1f} | "
                     f"{ours['failed']} |")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    env = server_env(args)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    sys.path.insert(0, str(ROOT))
    info = machine() | {"load_before": os.getloadavg()}
    recreate_database(args)
    info["schema"] = build_schema(args, env)
    app = make_app()
    world = seed(app, args.requests)
    ids = add_world(app, world)
    import psycopg
    with psycopg.connect(f"{args.pg}/{args.database}", autocommit=True) as conn:
        conn.execute(TABLE_DDL)
    print(json.dumps(info, ensure_ascii=False), flush=True)
    logs = Path(tempfile.mkdtemp(prefix="writes_bench_"))
    with service_and_baseline(args, env, logs) as (service, baseline):
        runs = measure_all(args, app, world, ids, service, baseline)
    checks = consistent(app)
    print(f"\nmedians over {args.repeats} repetition(s); {args.requests} requests per run; gunicorn "
          f"{worker_setting(args)} for both; load average after {os.getloadavg()}; logs in {logs}\n")
    print(table(runs))
    print(json.dumps(checks))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "checks": checks, "runs": [asdict(r) for r in runs]},
                                        ensure_ascii=False, indent=1))
    ok = all(checks.values()) and all(r.non_201 == 0 and r.server_errors == 0 for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
