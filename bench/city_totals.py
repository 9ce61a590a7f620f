"""point_totals for the bench city, set-based in SQL, its check against the app, and the boards rebuild.

Used by bench/city_gen.py after the ledger is loaded: month sums of ``ledger_entries`` rolled up to every
period (what ``totals.contributions()`` adds entry by entry), a random sample of subjects recomputed with
the app's own ``contributions()``, then the boards module's ``rebuild_boards_from_totals()``.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal


def timed(conn, sql: str, label: str) -> None:
    began = time.perf_counter()
    conn.execute(sql)
    print(f"    {label}: {time.perf_counter() - began:.1f} s", flush=True)


SCORING = "('award', 'deduction', 'adjustment', 'reversal')"
# Local month of an instant: + 8 h is exact for Asia/Shanghai over 2024-2026 (no DST since 1991) and much
# cheaper per row than AT TIME ZONE twice; the verification below uses the app's own period functions.
MONTHLY_SQL = f"""
CREATE TEMP TABLE t_month AS
SELECT subject_type, subject_id, ledger, date_trunc('month', credited_at + interval '8 hours')::date AS start,
       coalesce(sum(points) FILTER (WHERE kind IN {SCORING} AND points >= 0), 0)::bigint AS earned,
       coalesce(sum(points) FILTER (WHERE kind IN {SCORING} AND points < 0), 0)::bigint AS deducted,
       coalesce(sum(points) FILTER (WHERE kind NOT IN {SCORING}), 0)::bigint AS settled,
       count(*) FILTER (WHERE kind IN {SCORING}) AS scoring
FROM ledger_entries GROUP BY 1, 2, 3, 4"""
# Each coarser period is summed from the one below it (month -> quarter -> half -> year), so every step
# reads fewer rows; 'all' adds, for assessment scoring, the standing mirror that contributions() writes.
ROLLUPS = (("t_quarter", "t_month", "date_trunc('quarter', start)::date"),
           ("t_half", "t_quarter", "(date_trunc('year', start) + CASE WHEN extract(month FROM start) > 6 "
                                   "THEN interval '6 months' ELSE interval '0' END)::date"),
           ("t_year", "t_half", "date_trunc('year', start)::date"))
PERIOD_KEYS = {"t_month": "to_char(start, 'YYYY-MM')",
               "t_quarter": "to_char(start, 'YYYY') || '-Q' || extract(quarter FROM start)",
               "t_half": "to_char(start, 'YYYY') || '-H' || CASE WHEN extract(month FROM start) > 6 THEN 2 ELSE 1 END",
               "t_year": "to_char(start, 'YYYY')"}
INSERT_TOTALS = "INSERT INTO point_totals (subject_type, subject_id, ledger, period, earned, deducted, settled) "
ALL_TIME_SQL = INSERT_TOTALS + """
SELECT subject_type, subject_id, ledger, 'all', sum(earned), sum(deducted), sum(settled) FROM (
    SELECT subject_type, subject_id, ledger, earned, deducted, settled FROM t_year
    UNION ALL
    SELECT subject_type, subject_id, 'standing', earned, deducted, 0 FROM t_year
    WHERE ledger = 'assessment' AND scoring > 0) AS y
GROUP BY 1, 2, 3"""


def compute_totals(conn) -> None:
    timed(conn, MONTHLY_SQL, "month sums")
    timed(conn, "TRUNCATE point_totals", "truncate")
    for target, source, start in ROLLUPS:
        sums = ", ".join(f"sum({c})::bigint AS {c}" for c in ("earned", "deducted", "settled", "scoring"))
        timed(conn, f"CREATE TEMP TABLE {target} AS SELECT subject_type, subject_id, ledger, {start} AS start, "
                    f"{sums} FROM {source} GROUP BY 1, 2, 3, 4", f"{target} from {source}")
    for table, key in PERIOD_KEYS.items():
        timed(conn, INSERT_TOTALS + f"SELECT subject_type, subject_id, ledger, {key}, earned, deducted, settled "
                                    f"FROM {table}", f"insert {table}")
    timed(conn, ALL_TIME_SQL, "insert all-time (with the standing mirror)")


def verify_totals(app, rules, policy, members: int, sample: int, rng: random.Random) -> int:
    """Recompute a random sample of subjects with the app's contributions(); also check the decay rule."""
    import sqlalchemy as sa

    from points_service.db import db
    from points_service.domain.ledger.totals import totals_from_entries
    from points_service.domain.policy.rules import decay_amount
    from points_service.models import LedgerEntry, PointTotal

    for cents in [rng.randint(1, 10**7) for _ in range(2000)]:
        for days in (28, 29, 30, 31):
            want = decay_amount(Decimal(cents) / 100, policy.standing, days)
            assert rules.decay(cents, days) == int(want * 100), (cents, days)
    with app.app_context():
        ids = sorted(rng.sample(range(1, members + 1), min(sample, members)))
        subjects = [("member", i) for i in ids] + [("organization", 1)]
        differences = 0
        for subject_type, subject_id in subjects:
            entries = db.session.scalars(sa.select(LedgerEntry).where(
                LedgerEntry.subject_type == subject_type, LedgerEntry.subject_id == subject_id)).all()
            expected = totals_from_entries(entries)
            stored = {(str(t.subject_type), t.subject_id, str(t.ledger), t.period): [t.earned, t.deducted, t.settled]
                      for t in db.session.scalars(sa.select(PointTotal).where(
                          PointTotal.subject_type == subject_type, PointTotal.subject_id == subject_id))}
            differences += sum(expected.get(k) != stored.get(k) for k in set(expected) | set(stored))
        db.engine.dispose()
    print(f"    {len(subjects)} subjects recomputed with contributions(): {differences} difference(s)", flush=True)
    return differences


def build_boards(app) -> str:
    """Leaderboard tables from point_totals by the boards module's own set-based rebuild (one commit)."""
    try:
        from points_service.domain.boards.audit import rebuild_boards_from_totals
    except ImportError as exc:
        return f"skipped: {exc}"
    from points_service.db import db

    with app.app_context():
        try:
            db.session.execute(sa_text("SET LOCAL work_mem = '1GB'"))  # big hash joins over point_totals
            rebuild_boards_from_totals()
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                # an empty visibility map would make every rank lookup read the heap (see cli/boards.py)
                connection.exec_driver_sql("VACUUM (ANALYZE) board_scores, board_buckets, board_fine")
        except Exception as exc:  # noqa: BLE001 — another module's step: report it, keep the generated city
            db.session.rollback()
            return f"FAILED in rebuild_boards_from_totals(): {str(exc).splitlines()[0]}"
        finally:
            db.engine.dispose()
        rows = db.session.execute(sa_text("SELECT count(*) FROM board_scores")).scalar_one()
        db.engine.dispose()
    return f"rebuilt by rebuild_boards_from_totals(): {rows:,} board rows"


def sa_text(sql: str):
    import sqlalchemy as sa
    return sa.text(sql)
