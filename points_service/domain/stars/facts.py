"""The facts selections read, for a whole city at once: one grouped query per source, never one per member.

Everything is taken AS OF THE CUTOFF (the end of the period), so that a run recomputed later from the same
tables gives the same rows:
- where a member belonged: the affiliation covering the last instant before the cutoff (members enrolled
  later fall back to their current community and branch);
- points: the assessment net of the period from ``PointTotal`` (kept per credited_at period, so a closed
  period's row no longer changes), or, for verification, summed from the ledger itself;
- activities and hours: check-in awards credited in the period that were not reversed before the cutoff
  (the ledger, not the check-in rows, because a check-in's state may still change after the cutoff);
- micro-wishes (items of the policy's 微心愿 category) and disqualifying deductions, likewise;
- reached_at: the credited_at of the member's last scoring entry of the period (who reached the score first);
- reported: a confirmed member report for the half, decided before the cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import cents, db, from_cents
from points_service.domain.lifecycle.membership import placed_at
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy import Policy
from points_service.domain.reports.rates import confirmed_members
from points_service.domain.stars.rules import SelectionContext, StarFacts
from points_service.models import (
    SCORING_KINDS,
    EntryKind,
    LedgerEntry,
    LedgerName,
    Member,
    Organization,
    PointTotal,
    Region,
    SourceType,
    SubjectType,
)

MICRO_WISH_CATEGORY = "微心愿"


@dataclass(frozen=True, slots=True)
class Placement:
    member_id: int
    community_id: int
    branch_id: int


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    points: int = 0  # hundredths, summed from the ledger
    reached_at: datetime | None = None
    activities: int = 0
    hours: int = 0  # hundredths
    micro_wishes: int = 0
    disqualifying: int = 0


NO_LEDGER_FACTS = LedgerFacts()


def placements_at(cutoff: datetime, *, active_now: bool = False) -> list[Placement]:
    """Members who belonged at the cutoff with their community and branch then (ordered by member id) — the
    dated membership (``lifecycle.membership``), so a closed period's figures do not change when someone leaves
    later. ``active_now``: only those still active (业务之星 honours no one who has left)."""
    placed = placed_at(cutoff).subquery()
    statement = sa.select(placed.c.member_id, placed.c.community_id, placed.c.branch_id).order_by(placed.c.member_id)
    if active_now:
        statement = statement.join(Member, Member.id == placed.c.member_id).where(Member.is_active)
    return [Placement(*row) for row in db.session.execute(statement)]


def period_net_from_totals(period: Period) -> dict[int, int]:
    """Assessment net (hundredths) per member for the period, from the maintained totals."""
    rows = db.session.execute(sa.select(PointTotal.subject_id, cents(PointTotal.earned) + cents(PointTotal.deducted))
                              .where(PointTotal.subject_type == SubjectType.MEMBER,
                                     PointTotal.ledger == LedgerName.ASSESSMENT, PointTotal.period == period.key))
    return {member_id: int(net) for member_id, net in rows}


def ledger_facts(period: Period, cutoff: datetime, *, micro_wish_items: Iterable[str],
                 disqualifying_items: Iterable[str]) -> dict[int, LedgerFacts]:
    """One pass over the period's assessment entries of members, grouped by member."""
    entry, reversal = aliased(LedgerEntry), aliased(LedgerEntry)
    live = reversal.id.is_(None)  # not reversed before the cutoff
    scoring = entry.kind.in_(SCORING_KINDS)
    checkin_award = sa.and_(live, entry.kind == EntryKind.AWARD, entry.source_type == SourceType.CHECKIN)
    statement = (
        sa.select(
            entry.subject_id,
            sa.func.sum(cents(entry.points)).filter(scoring),
            sa.func.max(entry.credited_at).filter(scoring),
            sa.func.count(entry.id).filter(checkin_award),
            sa.func.sum(cents(entry.units)).filter(checkin_award),
            sa.func.count(entry.id).filter(live, entry.kind == EntryKind.AWARD,
                                           entry.item_code.in_(sorted(micro_wish_items) or [""])),
            sa.func.count(entry.id).filter(live, entry.kind == EntryKind.DEDUCTION,
                                           entry.item_code.in_(sorted(disqualifying_items) or [""])),
        )
        .outerjoin(reversal, sa.and_(reversal.reverses_id == entry.id, reversal.credited_at < cutoff))
        .where(entry.subject_type == SubjectType.MEMBER, entry.ledger == LedgerName.ASSESSMENT,
               entry.credited_at >= period.start, entry.credited_at < period.end)
        .group_by(entry.subject_id)
    )
    return {
        member_id: LedgerFacts(int(points or 0), reached_at, activities, int(hours or 0), wishes, disqualifying)
        for member_id, points, reached_at, activities, hours, wishes, disqualifying in db.session.execute(statement)
    }


def confirmed_reporters(cutoff: datetime, half_key: str, *, as_of: bool = False) -> set[int]:
    """Members with a confirmed report decided before the cutoff: for the half, or (``as_of``) for the half or
    any earlier one — the reading of ``reports.rates.report_rate``."""
    return set(db.session.scalars(confirmed_members(half_key, as_of=as_of, decided_before=cutoff).distinct()))


def micro_wish_items(policy) -> set[str]:
    return {code for code, item in policy.items.items() if item.category == MICRO_WISH_CATEGORY}


# --------------------------------------------------------------------------------- scope resolution

def street_of_community() -> dict[int, int]:
    parents = sa.select(Region.id, Region.parent_id).where(Region.parent_id.is_not(None))
    return dict(db.session.execute(parents).all())


def department_of_org() -> dict[int, int]:
    """Every organization's top (department) organization, from the materialized paths."""
    return {org_id: int(path.strip("/").split("/")[0])
            for org_id, path in db.session.execute(sa.select(Organization.id, Organization.path))
            if path.strip("/")}


def scope_resolver(scope_type: str):
    """A function Placement -> scope id for the policy's star scope (community, street or organization)."""
    if scope_type == "community":
        return lambda placement: placement.community_id
    if scope_type == "street":
        streets = street_of_community()
        return lambda placement: streets.get(placement.community_id, placement.community_id)
    if scope_type == "organization":
        departments = department_of_org()
        return lambda placement: departments.get(placement.branch_id, placement.branch_id)
    raise ValueError(f"unknown star scope: {scope_type}")


# -- the facts of a whole quarter, as the selection takes them ------------------------------------------

def selection_context(period: Period, policy: Policy, scope_type: str,
                      upheld: frozenset[int] = frozenset()) -> SelectionContext:
    half = period_containing(period.last_instant, PeriodKind.HALF).key
    names = tuple(policy.items[code].name for code in sorted(policy.stars.disqualifying_items) if code in policy.items)
    return SelectionContext(half, names, scope_type, upheld)


def gather_facts(period: Period, policy: Policy, scope_type: str) -> list[StarFacts]:
    """The facts for the quarter of every active member who belonged at its end: five set-based queries for the
    whole city."""
    cutoff = period.end
    scope_of = scope_resolver(scope_type)
    totals = period_net_from_totals(period)
    ledger = ledger_facts(period, cutoff, micro_wish_items=micro_wish_items(policy),
                          disqualifying_items=policy.stars.disqualifying_items)
    reporters = confirmed_reporters(cutoff, selection_context(period, policy, scope_type).half_key)
    facts = []
    for placement in placements_at(cutoff, active_now=True):
        member_id = placement.member_id
        facts.append(facts_from(member_id, placement.community_id, scope_of(placement), totals.get(member_id, 0),
                            ledger.get(member_id), member_id in reporters))
    return facts


def facts_from(member_id: int, community_id: int, scope_id: int, points_cents: int, ledger,
               reported: bool) -> StarFacts:
    return StarFacts(
        member_id=member_id, community_id=community_id, scope_id=scope_id, points=from_cents(points_cents),
        activities=ledger.activities if ledger else 0, hours=from_cents(ledger.hours if ledger else 0),
        micro_wishes=ledger.micro_wishes if ledger else 0, disqualifying=ledger.disqualifying if ledger else 0,
        reported=reported, reached_at=ledger.reached_at if ledger else None)
