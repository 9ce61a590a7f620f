"""Maintained totals: what each ledger entry adds to which (subject, ledger, period) row.

``contributions`` is the single definition used by the live write path and by the rebuild; the
property tests check both against an independent model. Totals are bumped in SQL (``x = x + n``) with
one multi-row upsert in the same transaction as the entry, so no concurrent writer can lose an update.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db, upsert
from points_service.domain.boards.maintain import bump_boards
from points_service.domain.periods import period_keys_for
from points_service.models import ALL_TIME, SCORING_KINDS, EntryKind, LedgerEntry, LedgerName, PointTotal

ZERO = Decimal(0)
TotalKey = tuple[str, int, str, str]  # subject_type, subject_id, ledger, period


@dataclass(frozen=True)
class Contribution:
    ledger: LedgerName
    period: str
    earned: Decimal = ZERO
    deducted: Decimal = ZERO
    settled: Decimal = ZERO


def contributions(entry: LedgerEntry) -> list[Contribution]:
    periods = [*period_keys_for(entry.credited_at), ALL_TIME]
    points = entry.points
    if EntryKind(entry.kind) in SCORING_KINDS:
        earned, deducted = (points, ZERO) if points >= 0 else (ZERO, points)
        rows = [Contribution(LedgerName(entry.ledger), p, earned=earned, deducted=deducted) for p in periods]
        if entry.ledger == LedgerName.ASSESSMENT:
            # The standing score is lifetime assessment scoring less decay: one sortable row per subject.
            rows.append(Contribution(LedgerName.STANDING, ALL_TIME, earned=earned, deducted=deducted))
        return rows
    return [Contribution(LedgerName(entry.ledger), p, settled=points) for p in periods]


def bump_totals(entry: LedgerEntry) -> None:
    """Add one entry's contributions to the totals (flush-level; the caller's transaction commits)."""
    bump_totals_of([entry])


def bump_totals_of(entries: list[LedgerEntry]) -> None:
    """Add the entries' contributions to the totals in one upsert (rows in the entries' order, one row per
    key), then to the boards entry by entry. Flush-level."""
    parts = [(entry, contributions(entry)) for entry in entries]
    rows: dict[TotalKey, dict] = {}
    for entry, contributed in parts:
        for c in contributed:
            key = (str(entry.subject_type), entry.subject_id, str(c.ledger), c.period)
            row = rows.setdefault(key, {"subject_type": entry.subject_type, "subject_id": entry.subject_id,
                                        "ledger": c.ledger, "period": c.period,
                                        "earned": ZERO, "deducted": ZERO, "settled": ZERO})
            row["earned"] += c.earned
            row["deducted"] += c.deducted
            row["settled"] += c.settled
    upsert(PointTotal, list(rows.values()), ("subject_type", "subject_id", "ledger", "period"), lambda excluded: {
        "earned": PointTotal.earned + excluded.earned,
        "deducted": PointTotal.deducted + excluded.deducted,
        "settled": PointTotal.settled + excluded.settled,
    })
    for entry, contributed in parts:
        bump_boards(entry, contributed)  # leaderboards move in the same transaction as the totals


def totals_from_entries(entries: Iterable[LedgerEntry]) -> dict[TotalKey, list[Decimal]]:
    sums: dict[TotalKey, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for entry in entries:
        for c in contributions(entry):
            row = sums[(str(entry.subject_type), entry.subject_id, str(c.ledger), c.period)]
            row[0] += c.earned
            row[1] += c.deducted
            row[2] += c.settled
    return sums


def stored_totals() -> dict[TotalKey, list[Decimal]]:
    return {
        (str(t.subject_type), t.subject_id, str(t.ledger), t.period): [t.earned, t.deducted, t.settled]
        for t in db.session.scalars(sa.select(PointTotal))
    }


def compare_totals() -> list[dict]:
    """Every (subject, ledger, period) whose stored total differs from the sum of its entries."""
    entries = db.session.scalars(sa.select(LedgerEntry).order_by(LedgerEntry.id).execution_options(yield_per=5000))
    expected, stored = totals_from_entries(entries), stored_totals()
    differences = []
    for key in sorted(set(expected) | set(stored)):
        want = expected.get(key, [ZERO, ZERO, ZERO])
        have = stored.get(key, [ZERO, ZERO, ZERO])
        if want != have:
            differences.append({"key": key, "expected": want, "stored": have})
    return differences


def rebuild_totals(fix: bool = False) -> list[dict]:
    """Report (and with ``fix``, repair) totals that disagree with the ledger. Commits when fixing."""
    differences = compare_totals()
    if fix and differences:
        for difference in differences:
            subject_type, subject_id, ledger, period = difference["key"]
            earned, deducted, settled = difference["expected"]
            db.session.merge(PointTotal(subject_type=subject_type, subject_id=subject_id, ledger=ledger,
                                        period=period, earned=earned, deducted=deducted, settled=settled))
        db.session.commit()
    return differences


def total_of(subject_type: str, subject_id: int, ledger: LedgerName, period: str) -> PointTotal:
    row = db.session.get(PointTotal, (subject_type, subject_id, ledger, period))
    return row or PointTotal(subject_type=subject_type, subject_id=subject_id, ledger=ledger, period=period,
                             earned=ZERO, deducted=ZERO, settled=ZERO)
