"""Check-in benchmark (issue 4): POST /api/v1/activities/{id}/checkins over HTTP against gunicorn on
PostgreSQL, next to a bare Flask endpoint doing one INSERT (bench/baseline_app.py), in the same run.

    .venv/bin/python bench/checkin_bench.py --requests 2000 --concurrency 16,64

What it does, and why:
- (Re)creates a throw-away database (default ``points_bench_checkin``), builds the schema with ``flask db
  upgrade`` and, if the migration lags the models, rebuilds it with ``db.create_all()`` (reported).
- Seeds one community, an organizer (community admin) and N members with accounts, N = --requests, so
  every check-in of a run is by a distinct member (the service allows one per member and activity).
- Starts both apps under gunicorn with the same worker count, on 127.0.0.1 only.
- For each repetition, concurrency and scenario it creates fresh activities (so the check-in window is
  open and earlier runs do not interfere) and fires --requests check-ins from a thread pool:
  ``burst`` = all at one activity (the 500-in-a-minute case, larger), ``spread`` = over several.
  The baseline gets the same bodies from the same client, interleaved run by run so drift hits both.
- The check-in token comes from GET /checkin-code as the organizer (re-fetched every 10 s, as a
  screen would); members' bearer tokens are minted with the server's JWT secret.
- After each run it checks exactly one row per member, all 201, no 5xx; medians over repetitions.
The machine is shared and the client runs on the same cores: read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
VENUE_LAT, VENUE_LNG = 35.4154, 116.5872  # 济宁, gcj02 (as in the tests)
TOKEN_REFRESH_SECONDS = 10  # the organizer's screen refreshes well within the 30 s step
REQUEST_TIMEOUT = 30
READY_TIMEOUT = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="check-ins per run (= members seeded)")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated client thread counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spread-activities", type=int, default=4, help="activities in the spread scenario")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both apps")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per worker for both apps (above 1: gunicorn's gthread worker class)")
    parser.add_argument("--port", type=int, default=18731, help="service port; baseline uses port+1")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default="points_bench_checkin", help="dropped and re-created")
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    args = parser.parse_args()
    if not 1 <= args.requests <= 20_000 or not 1 <= args.repeats <= 10:
        parser.error("--requests must be 1..20000 and --repeats 1..10")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    return args


# -- environment and database -------------------------------------------------------------------------

LIMITER_STORAGE = os.environ.get("BENCH_LIMITER_STORAGE", "redis://127.0.0.1:6379/14")


def server_env(args) -> dict:
    """The service as production runs it: the rate limits count in Redis (a round trip per limited request;
    ``memory://`` would also scan every key every 10 ms in each worker). Its counts are emptied first."""
    url = f"{args.pg.replace('postgresql://', 'postgresql+psycopg://', 1)}/{args.database}"
    clear_limiter_counts()
    return {**os.environ, "POINTS_ENV": "development", "POINTS_DATABASE_URL": url, "BENCH_DATABASE_URL": url,
            "POINTS_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
            "POINTS_PHONE_HASH_KEY": "bench-phone-hash-key", "PYTHONPATH": str(ROOT),
            "POINTS_RATELIMIT_STORAGE_URI": LIMITER_STORAGE}


def clear_limiter_counts() -> None:
    if LIMITER_STORAGE.startswith("redis://"):
        import redis
        redis.Redis.from_url(LIMITER_STORAGE).flushdb()


def recreate_database(args) -> None:
    """An empty database: an existing one gets a fresh ``public`` schema (DROP DATABASE waits for a checkpoint,
    which on a machine busy writing took over ten minutes), a missing one is created."""
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        found = conn.execute("SELECT datconnlimit FROM pg_database WHERE datname = %s", (args.database,)).fetchone()
        if found and found[0] == -2:  # left invalid by an interrupted DROP DATABASE: only dropping it helps
            conn.execute(f'DROP DATABASE "{args.database}"')
        if not found or found[0] == -2:
            conn.execute(f'CREATE DATABASE "{args.database}"')
            return
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (args.database,))
    with psycopg.connect(f"{args.pg}/{args.database}", autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def build_schema(args, env) -> str:
    """Migrations first; if they lag the models, the bench measures the models (and says so)."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=300)
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from points_service.db import db
    app = make_app()
    with app.app_context():
        with db.engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()  # the database may be dropped next
    if not drift:
        return "flask db upgrade"
    recreate_database(args)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return f"db.create_all() — the migration lags the models ({len(drift)} difference(s): {summarize(drift)})"


def summarize(drift) -> str:
    items = [d[0] if isinstance(d, list) else d for d in drift]
    return "; ".join(f"{item[0]} {getattr(item[-1], 'name', '')}".strip() for item in items)[:300]


def make_app():
    from points_service import create_app
    return create_app()


def in_process_app(args) -> tuple:
    """The service in this process on an emptied bench database (``--pg``/``--database``), configured as the
    gunicorn servers are (``server_env``): (app, the servers' environment, how the schema was built)."""
    env = server_env(args)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    sys.path.insert(0, str(ROOT))
    recreate_database(args)
    schema = build_schema(args, env)
    return make_app(), env, schema


# -- data ---------------------------------------------------------------------------------------------

@dataclass
class World:
    community_id: int
    admin_user_id: int
    user_ids: list[int]  # one account per member


def seed(app, members: int) -> World:
    from points_service.db import db
    from points_service.domain.accounts.users import add_user
    from points_service.domain.phones import hash_phone, mask_phone
    from points_service.domain.structure import add_organization, add_region, enroll_member
    from points_service.models import ROLE_SCOPE, OrgKind, RegionLevel, Role, User

    with app.app_context():
        city = add_region("B0", "济宁市", RegionLevel.CITY)
        district = add_region("B1", "任城区", RegionLevel.DISTRICT, city)
        street = add_region("B2", "古槐街道", RegionLevel.STREET, district)
        community = add_region("B3", "北门社区", RegionLevel.COMMUNITY, street)
        branch = add_organization("BB1", "第一党支部", OrgKind.BRANCH, add_organization("BD1", "市某局党委",
                                  OrgKind.DEPARTMENT, None, community))
        admin = add_user("bench_admin", "correct-horse-42-bench",
                         [(Role.COMMUNITY_ADMIN, ROLE_SCOPE[Role.COMMUNITY_ADMIN], community.id)])
        users = []
        for n in range(members):
            phone = f"139{n:08d}"
            member = enroll_member(f"党员{n}", hash_phone(phone, app.config["PHONE_HASH_KEY"]), mask_phone(phone),
                                   branch, community, None)
            users.append(User(member_id=member.id, display_name=member.name))
        db.session.add_all(users)
        db.session.commit()
        return World(community.id, admin.id, [u.id for u in users])


def new_activities(app, community_id: int, count: int) -> list[int]:
    """Fresh published activities starting in 20 minutes: check-in is open (from 30 minutes before)
    and nobody is late, so no deduction is booked — the common case at a service day's start."""
    import secrets

    from points_service.db import db, utcnow
    from points_service.models import Activity, ActivityStatus

    with app.app_context():
        starts = utcnow() + timedelta(minutes=20)
        activities = [Activity(community_id=community_id, title="固定服务日", item_code="member.activity_hour",
                               starts_at=starts, ends_at=starts + timedelta(hours=2), venue_lat=VENUE_LAT,
                               venue_lng=VENUE_LNG, radius_m=100, capacity=None, status=ActivityStatus.PUBLISHED,
                               checkin_secret=secrets.token_hex(32)) for _ in range(count)]
        db.session.add_all(activities)
        db.session.commit()
        return [a.id for a in activities]


def bearer_tokens(app, user_ids: list[int]) -> dict[int, dict]:
    from flask_jwt_extended import create_access_token

    with app.app_context():
        return {uid: {"Authorization": f"Bearer {create_access_token(identity=f'u:{uid}')}"} for uid in user_ids}


# -- servers ------------------------------------------------------------------------------------------

def worker_setting(args) -> str:
    return f"-w {args.workers} " + (f"-k gthread --threads {args.threads}" if args.threads > 1 else "(sync)")


@contextmanager
def service_and_baseline(args, env: dict, logs: Path, baseline_app: str = "baseline_app:app"):
    """The service and a baseline under the same gunicorn settings (``--workers``, ``--threads``), on
    ``--port`` and the next port; both stopped on the way out."""
    servers: list[Gunicorn] = []
    try:
        servers.append(Gunicorn(["wsgi:app"], args.port, args.workers, env, logs / "service.log", args.threads))
        servers.append(Gunicorn(["--pythonpath", "bench", baseline_app], args.port + 1, args.workers, env,
                                logs / "baseline.log", args.threads))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


class Gunicorn:
    """A gunicorn we started, in its own process group; stopped (TERM, then KILL) on exit."""

    def __init__(self, target: list[str], port: int, workers: int, env: dict, log: Path, threads: int = 1):
        self.url, self.log = f"http://127.0.0.1:{port}", log
        worker_class = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else []
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), *worker_class, "-b", f"127.0.0.1:{port}",
                   *target]
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {READY_TIMEOUT}s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


# -- the client ---------------------------------------------------------------------------------------

class CodeScreen:
    """The organizer's screen: the live check-in token per activity, re-fetched every 10 seconds."""

    def __init__(self, base_url: str, organizer: dict):
        self.base_url, self.organizer, self.lock, self.codes = base_url, organizer, threading.Lock(), {}

    def token(self, activity_id: int) -> str:
        with self.lock:
            fetched_at, token = self.codes.get(activity_id, (0.0, ""))
            if time.monotonic() - fetched_at > TOKEN_REFRESH_SECONDS:
                response = requests.get(f"{self.base_url}/api/v1/activities/{activity_id}/checkin-code",
                                        headers=self.organizer, timeout=REQUEST_TIMEOUT)
                response.raise_for_status()
                token = response.json()["data"]["token"]
                self.codes[activity_id] = (time.monotonic(), token)
            return token


@dataclass
class Run:
    target: str
    scenario: str
    concurrency: int
    repeat: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    non_201: int
    server_errors: int
    verified: bool


def drive(calls, concurrency: int):
    """Fire every call from ``concurrency`` threads, each with its own keep-alive session.
    Returns (wall seconds, [(status, latency seconds)])."""
    local = threading.local()

    def one(call):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        method, url, kwargs = call()
        started = time.perf_counter()
        try:
            status = session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs).status_code
        except requests.RequestException:
            status = 0
        return status, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, calls))
    return time.perf_counter() - started, results


def measure(target, scenario, concurrency, repeat, calls, verify) -> Run:
    seconds, results = drive(calls, concurrency)
    latencies = sorted(latency for _, latency in results)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    statuses = [status for status, _ in results]
    return Run(target, scenario, concurrency, repeat, len(results), round(seconds, 3),
               round(len(results) / seconds, 1), round(cuts[49] * 1000, 1), round(cuts[98] * 1000, 1),
               sum(s != 201 for s in statuses), sum(s >= 500 or s == 0 for s in statuses), verify())


def service_calls(base_url, activity_ids, user_ids, bearers, screen):
    def call_for(index, user_id):
        activity_id = activity_ids[index % len(activity_ids)]
        body = {"token": "", "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG, "accuracy": 20.0}  # ~22 m north

        def call():
            body["token"] = screen.token(activity_id)  # scanned just now, as a phone would
            return "POST", f"{base_url}/api/v1/activities/{activity_id}/checkins", {"json": body,
                                                                                      "headers": bearers[user_id]}
        return call
    return [call_for(i, uid) for i, uid in enumerate(user_ids)]


def baseline_calls(base_url, run_tag, spread, user_ids):
    return [lambda i=i, uid=uid: ("POST", f"{base_url}/checkins", {"json": {
        "activity_id": run_tag * 100 + i % spread, "member_id": uid, "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG}})
        for i, uid in enumerate(user_ids)]


CHECKIN_ROWS = ("SELECT count(*), count(DISTINCT member_id) FROM checkins "
                "WHERE activity_id = ANY(%s) AND status = 'checked_in'")
BASELINE_ROWS = "SELECT count(*), count(DISTINCT member_id) FROM bench_baseline_checkins WHERE activity_id / 100 = %s"


def one_row_per_member(dsn, sql, params, expected) -> bool:
    with psycopg.connect(dsn) as conn:
        rows, members = conn.execute(sql, params).fetchone()
    return rows == expected and members == expected


def warm_up(app, world, service, baseline, organizer, count) -> None:
    """One unrecorded pass at each app, so the first measured run does not pay imports and caches."""
    users = world.user_ids[:count]
    activity_ids = new_activities(app, world.community_id, 1)
    drive(service_calls(service.url, activity_ids, users, bearer_tokens(app, users),
                        CodeScreen(service.url, organizer)), 8)
    drive(baseline_calls(baseline.url, 0, 1, users), 8)


# -- reporting ----------------------------------------------------------------------------------------

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()[1].split()[1]
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(), "cpu": cpu,
            "memory": memory, "python": platform.python_version()}


def medians(runs: list[Run]) -> list[dict]:
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.concurrency, run.target), []).append(run)
    rows = []
    for (scenario, concurrency, target), group in groups.items():
        rows.append({"scenario": scenario, "concurrency": concurrency, "target": target,
                     **{k: statistics.median(getattr(r, k) for r in group) for k in ("throughput", "p50_ms", "p99_ms")},
                     "non_201": sum(r.non_201 for r in group), "server_errors": sum(r.server_errors for r in group),
                     "verified": all(r.verified for r in group), "repeats": len(group)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| scenario | concurrency | endpoint | req/s | p50 ms | p99 ms | req/s vs baseline | non-201 | 5xx | "
             "one row per member |", "|---|---|---|---|---|---|---|---|---|---|"]
    base = {(r["scenario"], r["concurrency"]): r for r in rows if r["target"] == "baseline"}
    for r in sorted(rows, key=lambda r: (r["scenario"], r["concurrency"], r["target"] != "checkin")):
        ratio = r["throughput"] / base[(r["scenario"], r["concurrency"])]["throughput"]
        lines.append(f"| {r['scenario']} | {r['concurrency']} | {r['target']} | {r['throughput']:.0f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {ratio:.2f} | {r['non_201']} | "
                     f"{r['server_errors']} | {'yes' if r['verified'] else 'NO'} |")
    return "\n".join(lines)


def measure_all(args, app, world, service, baseline) -> list[Run]:
    """Every repetition x concurrency x scenario, the service then the baseline (interleaved)."""
    dsn, runs, run_tag = f"{args.pg}/{args.database}", [], 0
    organizer = bearer_tokens(app, [world.admin_user_id])[world.admin_user_id]
    warm_up(app, world, service, baseline, organizer, min(200, args.requests))
    for repeat in range(1, args.repeats + 1):
        for concurrency in args.concurrency:
            for scenario, spread in (("burst", 1), ("spread", args.spread_activities)):
                run_tag += 1
                activity_ids = new_activities(app, world.community_id, spread)
                bearers = bearer_tokens(app, world.user_ids)  # fresh: access tokens live 15 minutes
                calls = service_calls(service.url, activity_ids, world.user_ids, bearers,
                                      CodeScreen(service.url, organizer))
                runs.append(measure("checkin", scenario, concurrency, repeat, calls, lambda ids=activity_ids:
                                    one_row_per_member(dsn, CHECKIN_ROWS, (ids,), args.requests)))
                calls = baseline_calls(baseline.url, run_tag, spread, world.user_ids)
                runs.append(measure("baseline", scenario, concurrency, repeat, calls, lambda tag=run_tag:
                                    one_row_per_member(dsn, BASELINE_ROWS, (tag,), args.requests)))
                for run in runs[-2:]:
                    print(json.dumps(asdict(run)), flush=True)
    return runs


# -- main ---------------------------------------------------------------------------------------------

def prepare(args, env):
    """Machine facts, a fresh database with its schema, the seeded world and the baseline's table."""
    info = machine()
    with psycopg.connect(f"{args.pg}/postgres") as conn:
        info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    print(json.dumps(info, ensure_ascii=False), flush=True)
    recreate_database(args)
    info["schema"] = build_schema(args, env)
    print("schema:", info["schema"], flush=True)
    app = make_app()
    world = seed(app, args.requests)
    with psycopg.connect(f"{args.pg}/{args.database}", autocommit=True) as conn:
        from baseline_app import TABLE_DDL
        conn.execute(TABLE_DDL)
    print(f"seeded {len(world.user_ids)} members", flush=True)
    return app, world, info


def main() -> int:
    args = parse_args()
    env = server_env(args)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    sys.path.insert(0, str(ROOT))
    app, world, info = prepare(args, env)
    logs = Path(tempfile.mkdtemp(prefix="checkin_bench_"))
    with service_and_baseline(args, env, logs) as (service, baseline):
        runs = measure_all(args, app, world, service, baseline)
    rows = medians(runs)
    print(f"\nmedians over {args.repeats} repetition(s); {args.requests} requests per run; "
          f"gunicorn {worker_setting(args)} for both; logs in {logs}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": [asdict(r) for r in runs], "medians": rows},
                                        ensure_ascii=False, indent=1))
    ok = all(r["verified"] and r["server_errors"] == 0 and r["non_201"] == 0 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
