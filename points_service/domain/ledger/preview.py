"""What-if: replay a candidate policy over a period's facts and show score and rank changes.

Nothing is written. Every scoring fact of the period (awards and deductions, with their units) is
re-priced under the candidate, with its caps simulated in credit order as ``credit`` applies them; corrections
(adjustments and reversals) carry over — a reversal cancels whatever its entry is re-priced to. What the year
granted before the period (a year or half-year cap's earlier months) fills the caps as booked, and a reversed
award gives its room back to its own windows, as when crediting: the policy in force previews no change.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db, to_points
from points_service.domain.access import Principal, authorize
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy import Policy, parse_policy
from points_service.domain.policy.rules import CAP_WINDOWS, apply_caps
from points_service.models import EntryKind, LedgerEntry, LedgerName, Member, Organization, SubjectType

ZERO = Decimal(0)


@dataclass
class _Replay:
    """Cap usage of one subject while its facts are re-priced in order."""

    item_usage: dict = field(default_factory=lambda: defaultdict(lambda: ZERO))
    positive_by_month: dict = field(default_factory=lambda: defaultdict(lambda: ZERO))
    repriced: dict = field(default_factory=dict)  # entry id -> candidate points
    award_windows: dict = field(default_factory=dict)  # award entry id -> the cap windows it was credited in
    total: Decimal = ZERO


def _windows(entry: LedgerEntry) -> dict[str, str]:
    return {name: period_containing(entry.credited_at, PeriodKind(name)).key for name in CAP_WINDOWS}


def _use(state: _Replay, entry: LedgerEntry, points: Decimal) -> None:
    """What ``credit`` counts against the caps: what the awards granted, the item's in each of its windows and the
    subject's in its month, by the award's credit instant, less the awards reversed since (a reversed award gives
    its room back to its own windows, none to the reversal's). A fact re-priced to points >= 0 is credited as an
    award, one re-priced below zero as a deduction, which takes no room."""
    if entry.kind in (EntryKind.AWARD, EntryKind.DEDUCTION) and points >= 0:
        award_id = entry.id
        state.award_windows[award_id] = _windows(entry)
    elif entry.kind == EntryKind.REVERSAL and entry.reverses_id in state.award_windows:
        award_id = entry.reverses_id
    else:  # deductions, adjustments, reversals of neither: no room used or given back
        return
    windows = state.award_windows[award_id]
    for name, key in windows.items():
        state.item_usage[(entry.item_code, name, key)] += points
    state.positive_by_month[windows["month"]] += points


def _reprice(entry: LedgerEntry, state: _Replay, policy: Policy) -> Decimal:
    if entry.kind == EntryKind.REVERSAL:  # cancels its entry as re-priced (or as booked, if before the period)
        return -state.repriced[entry.reverses_id] if entry.reverses_id in state.repriced else entry.points
    if entry.kind == EntryKind.ADJUSTMENT or entry.item_code not in policy.items:
        return entry.points
    item = policy.items[entry.item_code]
    units = entry.units if item.max_units_per_fact is None else min(entry.units, item.max_units_per_fact)
    asked = to_points(item.points * units)
    if asked < 0:
        return asked
    windows = _windows(entry)
    used = {name: state.item_usage[(item.code, name, key)] for name, key in windows.items()}
    month = windows["month"]
    return apply_caps(asked, item.caps, used, policy.monthly_positive_cap.get(str(entry.subject_type)),
                      state.positive_by_month[month]).granted


def _ranks(scores: dict) -> dict:
    """Competition ranks (1, 2, 2, 4), ties ordered by subject id."""
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    ranks, previous, rank = {}, None, 0
    for position, (subject, score) in enumerate(ordered, start=1):
        if score != previous:
            rank, previous = position, score
        ranks[subject] = rank
    return ranks


def preview_candidate(actor: Principal, document: dict, period: Period, subject_type: SubjectType,
                      limit: int = 200) -> dict:
    """Validate a candidate document (422 ``policy_invalid`` naming the field) and preview it."""
    authorize(actor, "policy.publish")
    return preview_policy(parse_policy(document), period, subject_type, limit)


def preview_policy(candidate: Policy, period: Period, subject_type: SubjectType, limit: int = 200) -> dict:
    # From the start of the period's year: the widest cap window containing any of its facts.
    since = period_containing(period.start, PeriodKind.YEAR).start
    entries = db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.subject_type == subject_type,
        LedgerEntry.kind.in_([EntryKind.AWARD, EntryKind.DEDUCTION, EntryKind.ADJUSTMENT, EntryKind.REVERSAL]),
        LedgerEntry.credited_at >= since, LedgerEntry.credited_at < period.end,
    ).order_by(LedgerEntry.credited_at, LedgerEntry.id).execution_options(yield_per=5000))
    current: dict[int, Decimal] = defaultdict(lambda: ZERO)
    replays: dict[int, _Replay] = defaultdict(_Replay)
    for entry in entries:
        state, inside = replays[entry.subject_id], entry.credited_at >= period.start
        points = _reprice(entry, state, candidate) if inside else entry.points  # before the period: as booked
        state.repriced[entry.id] = points
        _use(state, entry, points)
        if inside:
            state.total += points
            current[entry.subject_id] += entry.points
    proposed = {subject: replays[subject].total for subject in current}
    return _changes(dict(current), proposed, period, subject_type, limit)


def _changes(current: dict, proposed: dict, period: Period, subject_type: SubjectType, limit: int) -> dict:
    before, after = _ranks(current), _ranks(proposed)
    rows = [
        {"subject_id": subject, "points_before": current[subject], "points_after": proposed[subject],
         "delta": proposed[subject] - current[subject], "rank_before": before[subject], "rank_after": after[subject]}
        for subject in current
    ]
    changed = [row for row in rows if row["delta"] != 0 or row["rank_before"] != row["rank_after"]]
    changed.sort(key=lambda row: (-abs(row["rank_before"] - row["rank_after"]), -abs(row["delta"]), row["subject_id"]))
    changed = changed[:limit]
    model = Member if subject_type == SubjectType.MEMBER else Organization
    shown = [row["subject_id"] for row in changed]
    names = dict(db.session.execute(sa.select(model.id, model.name).where(model.id.in_(shown))).all())
    for row in changed:
        row["name"] = names.get(row["subject_id"], "")
    return {"period": period, "subject_type": subject_type, "subjects": len(rows), "changed": len(changed),
            "changes": changed}
