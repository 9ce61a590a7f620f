"""Helpers for leaderboard tests: ledger entries with exact points, and a naive rank recomputation."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import insert_entry
from points_service.domain.periods import LOCAL_TZ
from points_service.models import BoardScore, EntryKind, LedgerEntry, LedgerName, SourceType, SubjectType

_keys = itertools.count(1)
Q3 = datetime(2026, 8, 10, 9, tzinfo=LOCAL_TZ)


def entry(subject, points, at: datetime = Q3, *, ledger: LedgerName = LedgerName.ASSESSMENT,
          kind: EntryKind | None = None, subject_type: SubjectType = SubjectType.MEMBER) -> LedgerEntry:
    """Write one ledger entry of exactly ``points`` (bumping totals and boards); flushes only."""
    points = Decimal(str(points))
    kind = kind or (EntryKind.AWARD if points >= 0 else EntryKind.DEDUCTION)
    return insert_entry(LedgerEntry(
        subject_type=subject_type, subject_id=subject.id, ledger=ledger, kind=kind, item_code="test.item",
        units=Decimal(1), points=points, points_requested=points, occurred_at=at, credited_at=at,
        source_type=SourceType.ADMIN, source_id=f"t{next(_keys)}", idempotency_key=f"board-test-{next(_keys)}"))


def reverse(original: LedgerEntry, at: datetime) -> LedgerEntry:
    return insert_entry(LedgerEntry(
        subject_type=original.subject_type, subject_id=original.subject_id, ledger=original.ledger,
        kind=EntryKind.REVERSAL, item_code=original.item_code, units=original.units, points=-original.points,
        points_requested=-original.points, occurred_at=at, credited_at=at, source_type=SourceType.ADMIN,
        source_id=f"r{original.id}", idempotency_key=f"board-test-reversal-{original.id}",
        reverses_id=original.id, reverses_kind=original.kind))


def naive_rank(board: str, subject_id: int, column: str | None = None, scope_id: int | None = None) -> int | None:
    """1 + the members of the scope with a strictly higher score, counted row by row in Python."""
    rows = db.session.execute(sa.select(*BoardScore.__table__.c).where(
        BoardScore.board == board, BoardScore.subject_type == SubjectType.MEMBER)).all()
    inside = [row for row in rows if column is None or getattr(row, column) == scope_id]
    mine = next((row for row in inside if row.subject_id == subject_id), None)
    return None if mine is None else 1 + sum(row.score > mine.score for row in inside)
