"""Retention benchmark: the daily ``retention`` job's two purges (``purge_idempotency_keys``,
``purge_deliveries``: ``db.purge_in_batches``, committed batches) on PostgreSQL, with and without the indexes
that serve them, interleaved.

    .venv/bin/python bench/retention_bench.py --rows 1000000 --rounds 3

- Empties ``points_bench_retention`` (``--database``) as bench/checkin_bench.py does, builds the schema with
  ``flask db upgrade`` and seeds ``--members`` members with accounts.
- Generates ``--rows`` Idempotency-Keys created evenly over the last ``--key-days`` days (31: the 30 kept and the
  day the job deletes), 0.1 % of them left in flight by a killed request, and ``--rows`` WeChat deliveries (with
  their inbox messages) over the last ``--delivery-days`` days (91), ended 95 % sent, 3 % failed and 2 % refused,
  0.1 % still pending; ids rise with time, as they do in production. Both are kept in template tables.
- Each round restores both tables from the templates, creates (``with``) or drops (``without``) the two indexes
  as the models declare them, runs ``VACUUM (ANALYZE)``, then times each purge as the job calls it (30 and 90
  days, 5,000 rows a batch). The two variants alternate, their order swapped each round; the rows deleted must be
  the same in every run. Prints each batch statement's plan once per variant (``--no-explain`` skips them), the
  medians and the ratio.
The machine is shared: read ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import in_process_app, seed  # noqa: E402  (the bench folder is not a package)

INDEXES = {"idempotency_keys": "ix_idempotency_keys_created_at",
           "notification_deliveries": "ix_notification_deliveries_updated_at"}
KEEP_KEYS_DAYS, KEEP_DELIVERIES_DAYS = 30, 90


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="keys, and deliveries, generated")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--key-days", type=int, default=31)
    parser.add_argument("--delivery-days", type=int, default=91)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_retention")
    args = parser.parse_args()
    if not 1000 <= args.rows <= 5_000_000 or not 1 <= args.rounds <= 10:
        parser.error("--rows must be 1000..5000000 and --rounds 1..10")
    return args


# -- data -----------------------------------------------------------------------------------------------

def generate(conn, args, now: datetime) -> None:
    """Keys, messages and deliveries by generate_series, ids rising with time; then the template copies."""
    keys_from, deliveries_from = now - timedelta(days=args.key_days), now - timedelta(days=args.delivery_days)
    params = {"n": args.rows, "now": now, "keys_from": keys_from, "deliveries_from": deliveries_from}
    conn.execute(sa.text("""
        INSERT INTO idempotency_keys (user_id, key, fingerprint, state, response_status, response_body, created_at)
        SELECT u.id, 'bench-' || g, md5(g::text), CASE WHEN g % 1000 = 7 THEN 'in_flight' ELSE 'completed' END,
               CASE WHEN g % 1000 = 7 THEN NULL ELSE 201 END, '{"code": "ok", "data": {"id": 1}}',
               :keys_from + (:now - :keys_from) * (g::float8 / :n)
        FROM generate_series(1, :n) g JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM users
             WHERE member_id IS NOT NULL) u ON u.i = g % (SELECT count(*) FROM users WHERE member_id IS NOT NULL)
        ORDER BY g"""), params)
    conn.execute(sa.text("""
        INSERT INTO notification_messages (member_id, event, source_key, title, body, link, created_at)
        SELECT m.id, 'record_approved', 'bench:' || g, '审核通过', '您提交的服务记录已通过审核', '',
               :deliveries_from + (:now - :deliveries_from) * (g::float8 / :n)
        FROM generate_series(1, :n) g JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM members) m
             ON m.i = g % (SELECT count(*) FROM members)
        ORDER BY g"""), params)
    conn.execute(sa.text("""
        INSERT INTO notification_deliveries (message_id, member_id, template_key, data, page, state, attempts,
            next_attempt_at, duplicate_possible, last_error, created_at, sent_at, updated_at)
        SELECT id, member_id, 'record_result', '{"thing1": {"value": "审核通过"}}', '', s.state, 1,
               created_at, false, '', created_at, CASE WHEN s.state = 'sent' THEN created_at + interval '2 s' END,
               created_at + CASE WHEN s.state = 'failed' THEN interval '6 hours' ELSE interval '2 s' END
        FROM notification_messages, LATERAL (SELECT CASE WHEN id % 1000 = 3 THEN 'pending'
            WHEN id % 100 < 3 THEN 'failed' WHEN id % 100 < 5 THEN 'permanent_failed' ELSE 'sent' END AS state) s
        ORDER BY id"""))
    for table in INDEXES:
        conn.execute(sa.text(f"CREATE UNLOGGED TABLE template_{table} AS SELECT * FROM {table}"))


def restore(engine, with_indexes: bool) -> None:
    """Both tables as generated, the indexes present or not, vacuumed and analyzed as a day-old table would be."""
    from points_service.db import db

    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE notification_deliveries, idempotency_keys"))
        for table, index_name in INDEXES.items():
            conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM template_{table}"))
            index = next(i for i in db.metadata.tables[table].indexes if i.name == index_name)
            index.drop(conn, checkfirst=True)
            if with_indexes:
                index.create(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE) idempotency_keys, notification_deliveries"))


# -- measuring -------------------------------------------------------------------------------------------

def purge_once(app, now: datetime, batch: int, only: str | None = None) -> dict:
    """Each purge as the job calls it (``only``: one table's), timed; the rows each deleted."""
    from points_service.domain.idempotency import purge_idempotency_keys
    from points_service.domain.notifications.retention import purge_deliveries

    result = {}
    with app.app_context():
        for name, table, purge, days in (
                ("keys", "idempotency_keys", purge_idempotency_keys, KEEP_KEYS_DAYS),
                ("deliveries", "notification_deliveries", purge_deliveries, KEEP_DELIVERIES_DAYS)):
            if only in (None, table):
                began = time.perf_counter()
                deleted = purge(now - timedelta(days=days), batch_size=batch)
                result[name] = (time.perf_counter() - began, deleted)
    return result


def explain(app, now: datetime, batch: int, label: str) -> None:
    """The plans of the statements each purge really ran (with their parameters): the first batch's search and
    DELETE, as planned before the purge, then the last search, which finds nothing, as it ran after it."""
    from points_service.db import db

    seen: list[tuple[str, dict]] = []

    def record(_conn, _cursor, statement, parameters, *_args):
        if statement.lstrip().upper().startswith(("SELECT MAX", "DELETE")):
            seen.append((statement, parameters))
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            with db.engine.connect() as conn:
                for table in INDEXES:
                    first = len(seen)
                    purge_once(app, now, batch, only=table)
                    search, delete, last = seen[first], seen[first + 1], seen[-1]
                    show(conn, f"{label} {table}: first search", search, analyze=False)
                    show(conn, f"{label} {table}: first DELETE", delete, analyze=False)
                    show(conn, f"{label} {table}: last search (finds nothing)", last, analyze=True)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)


def show(conn, title: str, statement: tuple[str, dict], analyze: bool) -> None:
    options = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
    plan = conn.exec_driver_sql(f"EXPLAIN ({options}) {statement[0]}", statement[1]).scalars().all()
    conn.rollback()
    print(f"\n-- {title}\n" + "\n".join(plan))


def main() -> int:
    args = parse_args()
    app, _env, schema = in_process_app(args)
    print(f"schema: {schema}; {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    seed(app, args.members)
    from points_service.db import db

    now = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        began = time.perf_counter()
        with db.engine.begin() as conn:
            generate(conn, args, now.replace(tzinfo=None))
        print(f"generated {args.rows:,} keys and {args.rows:,} deliveries in {time.perf_counter() - began:.0f} s")
        engine = db.engine
        runs: dict[str, list[dict]] = {"without": [], "with": []}
        for round_number in range(args.rounds):
            order = ["without", "with"] if round_number % 2 == 0 else ["with", "without"]
            for variant in order:
                restore(engine, variant == "with")
                if round_number == 0 and not args.no_explain:
                    explain(app, now, args.batch, variant)
                    restore(engine, variant == "with")
                result = purge_once(app, now, args.batch)
                runs[variant].append(result)
                print(f"round {round_number + 1} {variant:>7} indexes: " + ", ".join(
                    f"{name} {seconds:.2f} s ({deleted:,} deleted)" for name, (seconds, deleted) in result.items()))
    return report(runs)


def report(runs: dict[str, list[dict]]) -> int:
    deleted = {(name, result[name][1]) for results in runs.values() for result in results for name in result}
    consistent = len(deleted) == 2
    print("\n| purge | rows deleted | without indexes (median s) | with indexes (median s) | ratio without/with |")
    print("|---|---|---|---|---|")
    for name in ("keys", "deliveries"):
        medians = {v: statistics.median(r[name][0] for r in runs[v]) for v in runs}
        count = runs["with"][0][name][1]
        print(f"| {name} | {count:,} | {medians['without']:.3f} | {medians['with']:.3f} | "
              f"{medians['without'] / medians['with']:.1f}× |")
    if not consistent:
        print(f"MISMATCH: the runs deleted different counts: {sorted(deleted)}")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
