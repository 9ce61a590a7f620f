"""Staying equal to the ledger (I7): rebuild every board set-wise from ``point_totals``, and compare.

Both start by *staging* (``domain/boards/staging.py``): a handful of INSERT … SELECT statements (no Python
loop over subjects) write what the boards should hold into temporary tables shaped like the live ones —
``reached_at`` from one pass over the ledger, board rows from the totals, organization rollups, histograms and
member counts from the staged rows.

- ``rebuild_boards_from_totals()`` replaces the live rows by the staged ones (the bench generator calls it after
  bulk-loading ``ledger_entries`` and ``point_totals``). On PostgreSQL a large rebuild truncates the tables and
  re-creates ``board_scores``' secondary indexes after loading, because maintaining eight indexes row by row
  (and, after a DELETE, stepping over the deleted keys in them) is what made the first version take 49 s for a
  5,000-member city. That path holds an exclusive lock on the board tables until the caller commits.
- ``compare_boards()`` compares staged and live rows in SQL (a full outer join, only differing rows come back
  to Python) and never writes to the live tables, so the daily audit does not block readers or writers.
- ``rebuild_boards(fix=True)`` replaces the live rows from the same staging when they differ (one commit).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.boards.staging import LIVE_TABLES, STAGE, analyze, drop_work_tables, is_postgresql, stage
from points_service.models import BoardScore, SubjectType

KEY_WIDTH = {"board_scores": 3, "board_buckets": 3, "board_fine": 3, "board_org_members": 1}
BULK_ROWS = 50_000  # from this many staged board rows PostgreSQL truncates and re-indexes instead of deleting


def rebuild_boards_from_totals(now: datetime | None = None) -> None:
    """Replace every board row, histogram and member count with what ``point_totals``, the ledger (for
    ``reached_at``) and the roster say. Flushes only; the caller commits. Set-wise SQL throughout."""
    staged = stage(now or utcnow())
    _replace_live(staged)
    drop_work_tables()


# -- replacing the live rows --------------------------------------------------------------------------------

def _replace_live(staged_rows: int) -> None:
    """Live tables := stage tables. Large PostgreSQL rebuilds truncate and re-index (see the module doc)."""
    bulk = is_postgresql() and staged_rows >= BULK_ROWS
    indexes = _secondary_indexes() if bulk else []
    if bulk:
        db.session.execute(sa.text(f"TRUNCATE {', '.join(t.name for t in LIVE_TABLES)}"))
        for name, _ in indexes:
            db.session.execute(sa.text(f'DROP INDEX "{name}"'))
    else:
        for live in LIVE_TABLES:
            db.session.execute(sa.delete(live))
    for live in LIVE_TABLES:
        stage = STAGE[live.name]
        keys = [stage.c[column.name] for column in live.primary_key.columns]
        db.session.execute(sa.insert(live).from_select(
            [c.name for c in live.columns], sa.select(*(stage.c[c.name] for c in live.columns)).order_by(*keys)))
    if bulk:
        db.session.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            db.session.execute(sa.text(definition))
        for live in LIVE_TABLES:
            analyze(live)


def _secondary_indexes() -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of board_scores' indexes that back no constraint, exactly as PostgreSQL has them."""
    return [tuple(row) for row in db.session.execute(sa.text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = CAST(:table AS regclass) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname"),
        {"table": BoardScore.__tablename__})]


# -- comparing ----------------------------------------------------------------------------------------------

def _kept(table: sa.Table) -> sa.ColumnElement:
    """Rows that count: a histogram or member count of zero is the same as no row, and so is an organization
    row left with nothing on it (e.g. after every member moved away)."""
    if table.name.endswith("board_scores"):
        return sa.not_(sa.and_(table.c.subject_type == SubjectType.ORGANIZATION, table.c.score == 0,
                               table.c.member_points == 0, table.c.participants == 0))
    return table.c[list(table.columns)[-1].name] != 0


def _table_differences(live: sa.Table) -> list[dict]:
    stored = sa.select(live).where(_kept(live)).subquery("stored")
    expected = sa.select(STAGE[live.name]).where(_kept(STAGE[live.name])).subquery("expected")
    width = KEY_WIDTH[live.name]
    names = [column.name for column in live.columns]
    keys, values = names[:width], names[width:]
    same_key = sa.and_(*(stored.c[k] == expected.c[k] for k in keys))
    missing = sa.or_(stored.c[keys[0]].is_(None), expected.c[keys[0]].is_(None))
    changed = sa.or_(*(stored.c[v].is_distinct_from(expected.c[v]) for v in values))
    rows = db.session.execute(sa.select(*(stored.c[n] for n in names), *(expected.c[n] for n in names))
                              .select_from(stored.join(expected, same_key, full=True))
                              .where(sa.or_(missing, changed))).all()
    differences = []
    for row in rows:
        mine, theirs = tuple(row[:len(names)]), tuple(row[len(names):])
        key = mine[:width] if mine[0] is not None else theirs[:width]
        differences.append({"key": (live.name, *key), "expected": theirs[width:] if theirs[0] is not None else None,
                            "stored": mine[width:] if mine[0] is not None else None})
    return differences


def compare_boards(now: datetime | None = None) -> list[dict]:
    """Every board/histogram/count row that differs from a set-wise rebuild (staged, never written live)."""
    stage(now or utcnow())
    differences = _differences()
    drop_work_tables()
    return differences


def _differences() -> list[dict]:
    found = [difference for live in LIVE_TABLES for difference in _table_differences(live)]
    return sorted(found, key=lambda difference: repr(difference["key"]))


def rebuild_boards(fix: bool = False, now: datetime | None = None) -> list[dict]:
    """Report (and with ``fix``, replace by the rebuild, one commit) every board row that disagrees."""
    staged = stage(now or utcnow())
    differences = _differences()
    if fix and differences:
        _replace_live(staged)
    drop_work_tables()
    if fix and differences:
        db.session.commit()
    return differences
