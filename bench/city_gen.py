"""Generate a whole city on PostgreSQL for the issue 5 benchmarks: structure, members, three years of ledger.

    .venv/bin/python bench/city_gen.py                 # 500k members, 3,000 organizations, 20M entries
    .venv/bin/python bench/city_gen.py --scale 0.1     # a tenth of everything, for a quick run

What it builds, and why this way:
- Drops and re-creates the database (default ``points_bench``) and builds the schema with the app's own
  ``db.create_all()``, so tables, CHECKs and triggers are the models'. Before loading it drops the big
  tables' keys, unique constraints, indexes and foreign keys, and re-creates them afterwards from the
  exact DDL PostgreSQL reported for them (``pg_get_constraintdef``/``pg_get_indexdef``): same schema,
  built once instead of maintained row by row. Rows go in by binary COPY (FREEZE) from generators, never
  through the ORM. COPY is an INSERT: the append-only triggers (UPDATE/DELETE) stay in place.
- Territory: city > 10 districts > 100 streets > 1,000 communities > 4 grids each. Organizations: one
  department (部门党组织, the subject of org points) per five branches (党支部). Members are spread over
  branches and communities; 30 % enrolled at the start, the rest as the city rolled out over the years.
- The ledger 2024-01-01 .. 2026-11-21 (Asia/Shanghai) is simulated by bench/city_ledger.py with the policy
  in force (config/policy.yaml as version 1): activities and check-ins, records, reports, deductions,
  reversals, adjustments, and the settlement jobs. A seeded pilot calibrates the activity rate so that the
  total lands near ``--entries``; ids ascend with time as in production.
- Settlement jobs run from ``--jobs-since`` (default 2025-12: the 2025 reset, then monthly decay and expiry
  to 2026-10), as if the scheduler went live then. Run all along, monthly decay alone writes one entry per
  member with a standing balance per month (~16M at 500k members over 35 months), which would leave a few
  million of the 20M for the scoring entries the benchmarks read. ``--jobs-since 2024-01`` runs them all along.
- ``point_totals`` is computed afterwards in SQL (set-based, month sums then every period), and a
  random sample of subjects is checked against the app's own ``contributions()`` of their entries.
- Leaderboard tables, if the boards module exists, are rebuilt from ``point_totals`` (``build_boards``).
The same seed and options give the same city. Timings are printed per phase.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import city_ledger as cl  # noqa: E402  (bench/ is not a package)
from city_totals import build_boards, compute_totals, timed, verify_totals  # noqa: E402

BIG_TABLES = ("members", "users", "affiliations", "activities", "checkins", "records", "reports", "ledger_entries",
              "point_totals")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞红建国志文斌浩宇欣怡晨阳子涵梓轩思远佳琪"
EPOCH = datetime(1970, 1, 1)
ADMIN_PASSWORD = "correct-horse-42-bench"
started = time.perf_counter()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies members, organizations, communities, "
                        "entries (0.1 = quick run)")
    parser.add_argument("--members", type=int, default=500_000)
    parser.add_argument("--organizations", type=int, default=3_000, help="departments + branches (1 : 5)")
    parser.add_argument("--communities", type=int, default=1_000)
    parser.add_argument("--entries", type=int, default=20_000_000, help="ledger entries in total (approximate)")
    parser.add_argument("--jobs-since", default="2025-12", help="first month (YYYY-MM) whose end runs the "
                        "settlement jobs (decay, expiry, reset); 2024-01 = all along, see the docstring")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--boards-only", action="store_true", help="only rebuild the boards of an existing city")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default="points_bench", help="dropped and re-created")
    args = parser.parse_args()
    for name in ("members", "organizations", "communities", "entries"):
        setattr(args, name, max(1, round(getattr(args, name) * args.scale)))
    year, month = (int(part) for part in args.jobs_since.split("-"))
    args.jobs_since = (year - cl.FIRST_YEAR) * 12 + month - 1
    if args.database in ("postgres", "test", "points"):
        parser.error(f"refusing to drop the database {args.database!r}")
    return args


@contextmanager
def phase(name: str):
    began = time.perf_counter()
    print(f"[{time.perf_counter() - started:7.1f}s] {name} ...", flush=True)
    yield
    print(f"[{time.perf_counter() - started:7.1f}s] {name}: {time.perf_counter() - began:.1f} s", flush=True)


# -- the database and its schema -------------------------------------------------------------------------

def make_app(args):
    url = f"{args.pg.replace('postgresql://', 'postgresql+psycopg://', 1)}/{args.database}"
    os.environ.update({"POINTS_ENV": "development", "POINTS_DATABASE_URL": url,
                       "POINTS_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
                       "POINTS_PHONE_HASH_KEY": "bench-phone-hash-key"})
    from points_service import create_app
    return create_app()


def recreate_database(args) -> None:
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def build_schema(app):
    """The models' schema, policy version 1 (as the service seeds it) and the Rules the simulation uses."""
    from points_service.db import db, utcnow
    from points_service.domain.accounts.signin import hash_password
    from points_service.domain.policy import policy_in_force
    from points_service.domain.policy.rules import CAP_WINDOWS, HALF, MONTH_POSITIVE
    from points_service.domain.policy.store import ensure_policy_seeded

    with app.app_context():
        db.create_all()
        ensure_policy_seeded()
        db.session.commit()
        policy = policy_in_force(utcnow())
        password_hash = hash_password(ADMIN_PASSWORD)
        db.engine.dispose()
    return cl.Rules(policy, CAP_WINDOWS, MONTH_POSITIVE, HALF), policy, password_hash


KEYS_SQL = """
SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.contype IN ('p', 'u', 'f')
  AND (c.conrelid::regclass::text = ANY(%(t)s) OR c.confrelid::regclass::text = ANY(%(t)s))
ORDER BY c.contype = 'f', c.conrelid::regclass::text, c.conname"""
INDEXES_SQL = """
SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i WHERE i.indrelid::regclass::text = ANY(%(t)s)
AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))"""


def drop_keys(conn) -> tuple[list, list]:
    """Remember and drop the big tables' keys, foreign keys and indexes (CHECKs and triggers stay)."""
    keys = conn.execute(KEYS_SQL, {"t": list(BIG_TABLES)}).fetchall()
    indexes = conn.execute(INDEXES_SQL, {"t": list(BIG_TABLES)}).fetchall()
    for _table, index, _ddl in indexes:
        conn.execute(f"DROP INDEX {index}")
    for table, name, _type, _ddl in sorted(keys, key=lambda k: k[2] != "f"):  # foreign keys first
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return keys, indexes


def restore_keys(conn, keys, indexes, tables) -> None:
    """Re-create what drop_keys removed for ``tables``, exactly as PostgreSQL described it; FKs last."""
    wanted = [k for k in keys if k[2] != "f" and k[0] in tables]
    for table, name, _type, ddl in wanted:
        timed(conn, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}', f"{table}.{name}")
    for table, index, ddl in indexes:
        if table in tables:
            timed(conn, ddl, index)


def restore_foreign_keys(conn, keys) -> None:
    for table, name, _type, ddl in keys:
        if _type == "f":
            timed(conn, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}', f"{table}.{name}")


def tune(conn) -> None:
    """Session settings only (the server is shared): memory for sorts, index builds and big sums."""
    for setting in ("maintenance_work_mem = '2GB'", "work_mem = '1GB'", "synchronous_commit = off",
                    "max_parallel_maintenance_workers = 1"):
        conn.execute(f"SET {setting}")


# -- COPY -------------------------------------------------------------------------------------------------

COLUMNS = {
    "regions": "id code name level parent_id path",
    "organizations": "id code name kind parent_id path paired_community_id",
    "pairings": "id organization_id community_id valid_from valid_to",
    "members": "id name phone_hash phone_masked branch_id community_id grid_id show_on_boards is_active created_at",
    "users": "id username password_hash display_name member_id is_active failed_logins locked_until created_at",
    "role_grants": "id user_id role scope_type scope_id granted_at granted_by_id",
    "affiliations": "id member_id branch_id community_id grid_id valid_from valid_to",
    "activities": "id community_id title item_code starts_at ends_at venue_lat venue_lng radius_m capacity status "
                  "proposed_by_org_id approval_step created_by_id created_at checkin_secret",
    "checkins": "id activity_id member_id status checked_in_at checkin_distance_m checked_out_at "
                "checkout_distance_m hours review_reason",
    "records": "id subject_type subject_id item_code occurred_at units description evidence status route_role "
               "route_scope_id submitted_by_id submitted_at decided_by_id decided_at decision_comment",
    "reports": "id subject_type subject_id community_id half status resources needs projects grid_id "
               "submitted_by_id submitted_at decided_by_id decided_at reason",
    "ledger_entries": "id subject_type subject_id ledger kind item_code units points points_requested capped_by "
                      "occurred_at credited_at policy_version source_type source_id actor_id reason "
                      "idempotency_key reverses_id reverses_kind created_at",
}
PG_TO_COPY = {"bigint": "int8", "integer": "int4", "boolean": "bool", "double precision": "float8",
              "json": "json", "timestamp without time zone": "timestamp", "character varying": "varchar",
              "text": "text"}


def ts(seconds: int | None):
    return None if seconds is None else EPOCH + timedelta(seconds=seconds)


def ledger_tuple(r: list) -> tuple:
    return (*r[:10], ts(r[10]), ts(r[11]), *r[12:20], ts(r[11]))


class CopySink(cl.Sink):
    """One connection and one open COPY ... (FORMAT BINARY, FREEZE) per table, in its own transaction."""

    def __init__(self, dsn: str, stack: ExitStack, tables: list[str]):
        super().__init__()
        self.copies, self.times = {}, {}
        for table in tables:
            conn = stack.enter_context(psycopg.connect(dsn))
            tune(conn)
            freeze = table in BIG_TABLES  # their foreign keys are dropped, so they can be truncated
            if freeze:
                conn.execute(f"TRUNCATE {table}")  # same transaction as the COPY: FREEZE writes rows frozen
            columns = COLUMNS[table].split()
            types = dict(conn.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                                      "WHERE attrelid = %s::regclass AND attnum > 0", (table,)).fetchall())
            copy = stack.enter_context(conn.cursor().copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY{', FREEZE' if freeze else ''})"))
            copy.set_types([PG_TO_COPY[types[c]] for c in columns])
            self.copies[table] = copy
            self.times[table] = [i for i, c in enumerate(columns) if types[c].startswith("timestamp")]

    def rows(self, table: str, rows) -> None:
        super().rows(table, rows)
        write = self.copies[table].write_row
        if table == "ledger_entries":
            for row in rows:
                write(ledger_tuple(row))
            return
        stamps = self.times[table]
        for row in rows:
            if stamps:
                row = list(row)
                for i in stamps:
                    row[i] = ts(row[i]) if isinstance(row[i], int) else row[i]
            write(row)


# -- the city ---------------------------------------------------------------------------------------------

class City:
    """Structure rows and the simulation's subjects for n members, built from one seeded generator."""

    def __init__(self, args, rng: random.Random, phone_key: str | None, password_hash: str):
        self.rng, self.rows = rng, {}
        self.structure(args.communities)
        self.organizations(args.organizations)
        self.people(args.members, phone_key, password_hash)

    def structure(self, count: int) -> None:
        districts, streets = max(1, round(count / 100)), max(1, round(count / 10))
        rows, self.community_ids, self.grids = [(1, "C1", "济宁市", "city", None, "/1/")], [], {}
        paths = {1: "/1/"}

        def add(level: str, parent: int, name: str) -> int:
            rid = len(rows) + 1
            paths[rid] = f"{paths[parent]}{rid}/"
            rows.append((rid, f"R{rid}", name, level, parent, paths[rid]))
            return rid
        district_ids = [add("district", 1, f"第{i + 1}区") for i in range(districts)]
        street_ids = [add("street", district_ids[i % districts], f"第{i + 1}街道") for i in range(streets)]
        for i in range(count):
            community = add("community", street_ids[i % streets], f"第{i + 1}社区")
            self.community_ids.append(community)
            self.grids[community] = [add("grid", community, f"第{i + 1}社区第{g + 1}网格") for g in range(4)]
        self.rows["regions"] = rows

    def organizations(self, count: int) -> None:
        departments = max(1, count // 6)
        rows, self.branch_ids, self.department_ids = [], [], list(range(1, departments + 1))
        pairings = []  # each department paired since the history starts: the 流动红旗 reads a period's pairing
        for d in self.department_ids:
            community = self.rng.choice(self.community_ids)
            rows.append((d, f"D{d}", f"市直第{d}部门党委", "department", None, f"/{d}/", community))
            pairings.append((d, d, community, cl.month_start(0), None))
        for b in range(departments + 1, max(count, departments + 1) + 1):
            parent = self.department_ids[(b - departments - 1) % departments]
            rows.append((b, f"B{b}", f"第{b - departments}党支部", "branch", parent, f"/{parent}/{b}/", None))
            self.branch_ids.append(b)
        self.rows.update(organizations=rows, pairings=pairings)

    def people(self, count: int, phone_key: str | None, password_hash: str) -> None:
        from points_service.domain.phones import hash_phone, mask_phone
        rng, start = self.rng, cl.month_start(0)
        admin_of = {c: 2 + i for i, c in enumerate(self.community_ids)}
        users = [(1, "bench_admin", password_hash, "市级管理员", None, True, 0, None, start)]
        users += [(u, f"bench_c{c}", password_hash, f"社区管理员{c}", None, True, 0, None, start)
                  for c, u in admin_of.items()]
        grants = [(1, 1, "admin", "city", None, start, None)]
        grants += [(u, u, "community_admin", "region", c, start, 1) for c, u in admin_of.items()]
        members, affiliations, self.subjects = [], [], []
        lat_lng = {c: (35.3 + rng.random() * 0.2, 116.5 + rng.random() * 0.2) for c in self.community_ids}
        self.communities = {c: (*lat_lng[c], admin_of[c]) for c in self.community_ids}
        first_user = len(users) + 1
        for mid in range(1, count + 1):
            joined = 0 if rng.random() < 0.3 else rng.randint(0, cl.MONTHS - 2)
            created = cl.month_start(joined) + rng.randint(0, 3 * cl.DAY)
            community, branch = rng.choice(self.community_ids), rng.choice(self.branch_ids)
            grid = rng.choice(self.grids[community])
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))
            phone = f"139{mid:08d}"
            phone_hash = hash_phone(phone, phone_key) if phone_key else f"{mid:064x}"
            members.append((mid, name, phone_hash, mask_phone(phone), branch, community, grid,
                            rng.random() > 0.03, True, created))
            users.append((first_user + mid - 1, None, None, name, mid, True, 0, None, created))
            affiliations.append((mid, mid, branch, community, grid, created, None))
            activity = rng.gammavariate(0.6, 1 / 0.6)
            self.subjects.append(cl.Subject("member", mid, community, grid, branch, first_user + mid - 1, activity,
                                            joined, admin_of[community]))
        for row in self.rows["organizations"]:
            if row[3] == "department":
                self.subjects.append(cl.Subject("organization", row[0], row[6], None, None, None,
                                                rng.gammavariate(2, 0.5), 0, admin_of[row[6]]))
        self.rows.update(members=members, users=users, role_grants=grants, affiliations=affiliations)


def calibrate(args, rules) -> float:
    """The activity rate that gives ~``--entries``: two seeded pilot cities of 3,000 members, a line through."""
    pilot = argparse.Namespace(members=3000, communities=6, organizations=36)
    target = args.entries / args.members * pilot.members
    counts = []
    for rate in (0.5, 1.5):
        rng = random.Random(args.seed + 1)
        city = City(pilot, rng, None, "")
        sink = cl.Sink()
        cl.History(rules, city.subjects, city.communities, sink, rng, rate, 1, args.jobs_since).run()
        counts.append(sink.counts["ledger_entries"])
    slope = (counts[1] - counts[0]) / 1.0
    rate = min(10.0, max(0.05, 0.5 + (target - counts[0]) / slope))
    print(f"    pilot: {counts[0]} entries at rate 0.5, {counts[1]} at 1.5 -> rate {rate:.3f} facts per "
          f"member-month for ~{target:.0f}", flush=True)
    return rate


# -- main -------------------------------------------------------------------------------------------------

def load(args, dsn, city: City, rules, rate: float, rng: random.Random) -> cl.History:
    for table in ("regions", "organizations", "pairings"):  # committed first, in order: each refers to the last
        with ExitStack() as stack:
            CopySink(dsn, stack, [table]).rows(table, city.rows.pop(table))
    tables = ["members", "users", "role_grants", "affiliations", "activities", "checkins", "records", "reports",
              "ledger_entries"]
    with ExitStack() as stack:
        sink = CopySink(dsn, stack, tables)
        for table in ("members", "users", "role_grants", "affiliations"):
            sink.rows(table, city.rows.pop(table))
        history = cl.History(rules, city.subjects, city.communities, sink, rng, rate, 1, args.jobs_since)
        for m in range(cl.MONTHS):
            history.month(m)
            if m % 6 == 5 or m == cl.MONTHS - 1:
                print(f"    {cl.month_key(m)}: {sink.counts.get('ledger_entries', 0):,} entries "
                      f"[{time.perf_counter() - started:.0f}s]", flush=True)
        print("    committing the COPYs ...", flush=True)
    print("    rows: " + ", ".join(f"{t} {n:,}" for t, n in sink.counts.items()), flush=True)
    print("    entries by kind: " + ", ".join(f"{k} {n:,}" for k, n in sorted(history.kinds.items())), flush=True)
    return history


def finish_schema(conn, keys, indexes) -> None:
    with phase("keys and indexes"):
        restore_keys(conn, keys, indexes, set(BIG_TABLES) - {"point_totals"})
    with phase("sequences"):
        for table in COLUMNS:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    with phase("point_totals (set-based)"):
        compute_totals(conn)
        restore_keys(conn, keys, indexes, {"point_totals"})
    with phase("foreign keys"):
        restore_foreign_keys(conn, keys)
    with phase("vacuum analyze"):
        for table in BIG_TABLES:
            timed(conn, f"VACUUM (ANALYZE) {table}", table)


def main() -> int:
    args = parse_args()
    dsn = f"{args.pg}/{args.database}"
    if args.boards_only:
        with phase("boards"):
            print(f"    {build_boards(make_app(args))}", flush=True)
        return 0
    print(f"city: {args.members:,} members, {args.organizations:,} organizations, {args.communities:,} "
          f"communities, ~{args.entries:,} entries, seed {args.seed}, database {args.database}", flush=True)
    with phase("schema (db.create_all)"):
        recreate_database(args)
        app = make_app(args)
        rules, policy, password_hash = build_schema(app)
        with psycopg.connect(dsn, autocommit=True) as conn:
            keys, indexes = drop_keys(conn)
    with phase("calibrate the activity rate"):
        rate = calibrate(args, rules)
    rng = random.Random(args.seed)
    with phase("structure and members"):
        city = City(args, rng, app.config["PHONE_HASH_KEY"], password_hash)
    with phase("ledger and activity (COPY)"):
        history = load(args, dsn, city, rules, rate, rng)
    with psycopg.connect(dsn, autocommit=True) as conn:
        tune(conn)
        finish_schema(conn, keys, indexes)
    with phase("verify a sample against contributions()"):
        differences = verify_totals(app, rules, policy, args.members, 300, random.Random(args.seed + 2))
    with phase("boards"):
        print(f"    {build_boards(app)}", flush=True)
    with psycopg.connect(dsn) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("ledger_entries", "point_totals", "checkins", "activities", "reports", "records")}
    print(f"done in {time.perf_counter() - started:.0f} s; {args.database}: {size}; "
          + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f"; ids up to {history.next_id['ledger'] - 1:,}",
          flush=True)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
