"""Where a hot write's time goes: profiles POST check-ins (and check-outs) in process with pyinstrument.

    .venv/bin/python bench/profile_writes.py --requests 300            # prints the tree and a summary
    .venv/bin/python bench/profile_writes.py --requests 300 --html /tmp/checkin.html
    .venv/bin/python bench/profile_writes.py --requests 300 --checkout --approve --order --segments

- (Re)creates ``points_bench_profile`` (``--database``) as bench/checkin_bench.py does, seeds one community,
  an organizer and --requests members, and creates one published activity starting in 20 minutes.
- Sends --requests check-ins through Flask's test client (no gunicorn, no network: the fixed per-request
  cost of the app itself), after an unrecorded warm-up, under pyinstrument; counts the SQL statements each
  request sends (one round trip each) and prints the mean wall time and the app's CPU time (this process: Flask,
  SQLAlchemy, the driver; not PostgreSQL's) per request.
- ``--checkout`` then checks the same members out (after moving the activity's end into the past), which
  credits both ledgers and the boards.
- ``--approve`` has every member report 2 hours (``POST /api/v1/records``, not profiled) and profiles the branch
  secretary approving them (credits both ledgers and the boards); ``--order`` funds every member with 100
  redeemable points and profiles one 积分超市 order each (as bench/writes_bench.py seeds them).
Absolute figures include the profiler's overhead; read the shares. ``--segments`` runs no profiler: it puts a
clock around each function of ``SEGMENTS`` and prints the wall time per request spent inside each (nested ones
count in each), which keeps absolute figures close to an unprofiled run.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import (  # noqa: E402  (the bench folder is not a package)
    VENUE_LAT,
    VENUE_LNG,
    bearer_tokens,
    in_process_app,
    new_activities,
    seed,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_profile")
    parser.add_argument("--checkout", action="store_true", help="also profile the check-outs")
    parser.add_argument("--approve", action="store_true", help="also profile approvals that credit")
    parser.add_argument("--order", action="store_true", help="also profile 积分超市 orders")
    parser.add_argument("--record", action="store_true", help="also profile POST /records (a pending self-report)")
    parser.add_argument("--html", type=Path, help="write pyinstrument's HTML report here")
    parser.add_argument("--statements", action="store_true", help="print the last request's SQL statements")
    parser.add_argument("--no-profile", action="store_true", help="time and count statements only")
    parser.add_argument("--packages", action="store_true",
                        help="cProfile instead of pyinstrument: self time per package and the top functions")
    parser.add_argument("--segments", action="store_true",
                        help="no profiler: wall time per request inside each of SEGMENTS (a clock around each call)")
    args = parser.parse_args()
    if not 10 <= args.requests <= 5000:
        parser.error("--requests must be 10..5000")
    return args


class StatementCounter:
    def __init__(self, engine):
        import sqlalchemy as sa
        self.count, self.last = 0, []
        sa.event.listen(engine, "before_cursor_execute", self._count)
        sa.event.listen(engine, "commit", self._commit)

    def _count(self, _conn, _cursor, statement, *_args):
        self.count += 1
        self.last.append(" ".join(statement.split())[:160])

    def _commit(self, _conn):
        self.last.append("COMMIT")


def run(client, calls, profiler=None):
    if profiler:
        profiler.start()
    started, cpu = time.perf_counter(), time.process_time()
    statuses = [client.post(url, json=body, headers=headers).status_code for url, body, headers in calls]
    seconds = time.perf_counter() - started
    run.cpu = time.process_time() - cpu
    if profiler:
        profiler.stop()
    return seconds, statuses


def checkin_calls(client, organizer, activity_id, bearers):
    token = client.get(f"/api/v1/activities/{activity_id}/checkin-code", headers=organizer).get_json()["data"]["token"]
    body = {"token": token, "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG, "accuracy": 20.0}
    return [(f"/api/v1/activities/{activity_id}/checkins", body, headers) for headers in bearers.values()]


def checkout_calls(app, client, organizer, activity_id, bearers):
    from points_service.db import db, utcnow
    from points_service.models import Activity, Checkin
    with app.app_context():
        activity = db.session.get(Activity, activity_id)
        activity.starts_at, activity.ends_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(minutes=5)
        db.session.execute(Checkin.__table__.update().where(Checkin.activity_id == activity_id)
                           .values(checked_in_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
        ids = dict(db.session.execute(db.select(Checkin.member_id, Checkin.id)
                                      .where(Checkin.activity_id == activity_id)).all())
        members = {uid: member for uid, member in db.session.execute(
            db.text("SELECT id, member_id FROM users WHERE id = ANY(:ids)"), {"ids": list(bearers)}).all()}
    token = client.get(f"/api/v1/activities/{activity_id}/checkin-code", headers=organizer).get_json()["data"]["token"]
    body = {"token": token, "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG}
    return [(f"/api/v1/checkins/{ids[members[uid]]}/checkout", body, headers) for uid, headers in bearers.items()]


class PackageProfiler:
    """cProfile's CPU self time summed per package (sqlalchemy, psycopg, marshmallow, points_service, …)."""

    def __init__(self):
        import cProfile
        self.profile = cProfile.Profile(time.process_time)  # CPU: waiting for PostgreSQL is not ours
        self.start, self.stop = self.profile.enable, self.profile.disable

    def output_text(self, **_options) -> str:
        import pstats
        stats = pstats.Stats(self.profile).stats
        per_package: dict[str, float] = {}
        for (filename, _line, _name), (_cc, _nc, self_time, _cum, _callers) in stats.items():
            per_package[_package(filename)] = per_package.get(_package(filename), 0.0) + self_time
        total = sum(per_package.values()) or 1.0
        lines = [f"{share / total:6.1%}  {name}" for name, share in
                 sorted(per_package.items(), key=lambda kv: -kv[1])[:15]]
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:25]
        lines += ["", "top functions by self time:"] + [
            f"{self_time / total:6.1%}  {calls:7d}  {_package(f)}:{name} ({Path(f).name}:{line})"
            for (f, line, name), (_cc, calls, self_time, _cum, _callers) in top]
        return "\n".join(lines)


def _package(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/points_service/" in filename:
        return "points_service/" + filename.split("/points_service/")[1].split("/")[0].removesuffix(".py")
    return "python" if filename.startswith(("/", "<")) else filename


# The parts of a write, timed by ``--segments``: module, function (each wrapped wherever it was imported).
SEGMENTS = (
    ("points_service.api.security", "verify_access_token"), ("points_service.api.security", "_load_principal"),
    ("points_service.ratelimit", "hit"), ("points_service.domain.checkin.scans", "check_in"),
    ("points_service.domain.checkin.scans", "_checkin_context"), ("points_service.domain.checkin.scans", "check_out"),
    ("points_service.domain.checkin.scans", "_transition"), ("points_service.domain.approvals.decisions", "decide"),
    ("points_service.domain.market.orders", "place_order"),
    ("points_service.domain.approvals.records", "submit_member_record"),
    ("points_service.domain.policy.store", "policy_in_force"),
    ("points_service.domain.ledger.credit", "credit"), ("points_service.domain.ledger.credit", "lock_subject"),
    ("points_service.domain.ledger.credit", "_usage"), ("points_service.domain.ledger.credit", "_insert_all"),
    ("points_service.domain.ledger.totals", "bump_totals_of"), ("points_service.domain.boards.maintain", "bump_boards"),
    ("points_service.domain.boards.maintain", "_set_placement"), ("points_service.db", "insert_unless_exists"),
    ("points_service.domain.notifications.outbox", "notify"), ("points_service.db", "upsert"),
    ("points_service.db", "commit_keeping"),
)


class SegmentClock:
    """Wall time spent inside each of ``SEGMENTS`` (nested segments count in each), per request."""

    def __init__(self):
        import importlib
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        for module_name, name in SEGMENTS:
            original = getattr(importlib.import_module(module_name), name)
            timed = self._timed(f"{module_name.rsplit('.', 1)[1]}.{name}", original)
            for module in list(sys.modules.values()):  # every module that imported it by name
                if getattr(module, "__name__", "").startswith("points_service") and \
                        getattr(module, name, None) is original:
                    setattr(module, name, timed)
        self.recording = False

    def _timed(self, label, original):
        import functools

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.recording:
                    self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                    self.calls[label] = self.calls.get(label, 0) + 1
        return timed

    def start(self):
        self.seconds, self.calls, self.recording = {}, {}, True

    def stop(self):
        self.recording = False

    def output_text(self, requests: int, **_options) -> str:
        return "\n".join(f"{seconds / requests * 1e6:8.0f} µs  {self.calls[label] / requests:4.1f}×  {label}"
                         for label, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]))


def _profiler(args):
    from pyinstrument import Profiler
    if args.no_profile:
        return None
    if args.segments:
        return profiled.segments
    return PackageProfiler() if args.packages else Profiler(interval=0.0005)


def _how(args) -> str:
    return ", timed by segment" if args.segments else ", profiled"


def profiled(label, app, counter, client, calls, args, expected):
    profiler = _profiler(args)
    before = counter.count
    seconds, statuses = run(client, calls[:-1], profiler)
    cpu = run.cpu
    counter.last = []
    last_seconds, last_statuses = run(client, calls[-1:], None)
    seconds, statuses, cpu = seconds + last_seconds, statuses + last_statuses, cpu + run.cpu
    bad = [s for s in statuses if s != expected]
    print(f"\n== {label}: {len(calls)} requests, {seconds / len(calls) * 1000:.2f} ms each "
          f"(in process{_how(args) if profiler else ''}; app CPU {cpu / len(calls) * 1000:.2f} ms), "
          f"{(counter.count - before) / len(calls):.1f} SQL "
          f"statements per request, {len(bad)} not {expected} {sorted(set(bad))}")
    if args.statements:
        print("statements of the last request:", *counter.last, sep="\n  ")
    if profiler:
        print(profiler.output_text(requests=len(calls) - 1) if args.segments else
              profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False))
        if args.html and not args.packages and not args.segments:
            args.html.with_name(f"{args.html.stem}-{label}{args.html.suffix}").write_text(profiler.output_html())


def main() -> int:
    args = parse_args()
    app, _, schema = in_process_app(args)
    print("schema:", schema, flush=True)
    world = seed(app, args.requests + 50)
    from points_service.db import db
    with app.app_context():
        counter = StatementCounter(db.engine)
    profiled.segments = SegmentClock() if args.segments else None
    organizer = bearer_tokens(app, [world.admin_user_id])[world.admin_user_id]
    client = app.test_client()
    warm_users, users = world.user_ids[:50], world.user_ids[50:]
    warm = new_activities(app, world.community_id, 1)[0]
    run(client, checkin_calls(client, organizer, warm, bearer_tokens(app, warm_users)))
    activity = new_activities(app, world.community_id, 1)[0]
    bearers = bearer_tokens(app, users)
    profiled("checkin", app, counter, client, checkin_calls(client, organizer, activity, bearers), args, 201)
    if args.checkout:
        run(client, checkout_calls(app, client, organizer, warm, bearer_tokens(app, warm_users)))
        profiled("checkout", app, counter, client, checkout_calls(app, client, organizer, activity, bearers),
                 args, 200)
    if args.approve or args.order or args.record:
        profile_approvals_and_orders(app, world, counter, client, args, warm_users, users)
    with app.app_context():
        db.engine.dispose()
    return 0


def profile_approvals_and_orders(app, world, counter, client, args, warm_users, users):
    from writes_bench import add_world, pending_records

    from points_service.db import utcnow
    ids = add_world(app, world)
    secretary = bearer_tokens(app, [ids["secretary"]])[ids["secretary"]]
    for warm_up, group in ((True, warm_users), (False, users)):
        bearers = bearer_tokens(app, group)
        if args.approve or args.record:
            body = {"item_code": "member.self_service_hour", "hours": 2, "description": "为独居老人代购生活用品",
                    "occurred_at": (utcnow() - timedelta(days=1)).isoformat()}
            calls = [("/api/v1/records", body, headers) for headers in bearers.values()]
            if warm_up or not args.record:
                run(client, calls)
            else:
                profiled("record", app, counter, client, calls, args, 201)
        if args.approve:
            records = pending_records(app, [ids["members"][user_id] for user_id in group])
            calls = [(f"/api/v1/approvals/record:{r}/approve", {"comment": "属实"}, secretary) for r in records]
            if warm_up:
                run(client, calls)
            else:
                profiled("approve", app, counter, client, calls, args, 200)
        if args.order:
            calls = [("/api/v1/shop/orders", {"item_id": ids["item"]}, headers) for headers in bearers.values()]
            if warm_up:
                run(client, calls)
            else:
                profiled("order", app, counter, client, calls, args, 201)


if __name__ == "__main__":
    sys.exit(main())
