"""Points per month for a chart: a member's, or an organization's own points beside its members' sum.

Read off the maintained month ``PointTotal`` rows (one indexed statement per series, never a ledger scan);
the same net figure (earned + deducted) as the leaderboards and ``reading.member_points`` use.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import cents, db, from_cents, utcnow
from points_service.domain.access import Principal
from points_service.domain.lifecycle.membership import branch_at
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.structure import get_member, get_organization
from points_service.models import Affiliation, LedgerName, Member, Organization, PointTotal, SubjectType

MONTHS = 12


def last_months(count: int = MONTHS, now: datetime | None = None) -> list[Period]:
    """The ``count`` months ending with the current one, oldest first."""
    month = period_containing(now or utcnow(), PeriodKind.MONTH)
    months = [month]
    for _ in range(count - 1):
        months.append(months[-1].previous())
    return months[::-1]


def monthly_net(subject_type: SubjectType, subjects, months: list[Period]) -> list:
    """Σ net assessment points per month of ``subjects`` (an id or a subquery of ids), aligned to ``months``."""
    keys = [month.key for month in months]
    chosen = PointTotal.subject_id.in_(subjects) if isinstance(subjects, sa.Select) \
        else PointTotal.subject_id == subjects
    rows = db.session.execute(
        sa.select(PointTotal.period, sa.func.sum(cents(PointTotal.earned) + cents(PointTotal.deducted)))
        .where(PointTotal.subject_type == subject_type, chosen, PointTotal.ledger == LedgerName.ASSESSMENT,
               PointTotal.period.in_(keys))
        .group_by(PointTotal.period))
    found = {period: total for period, total in rows}
    return [from_cents(found.get(key) or 0) for key in keys]


def member_trend(principal: Principal, member_id: int, now: datetime | None = None) -> dict:
    member = get_member(principal, member_id)  # authorizes exactly like the member's points page
    months = last_months(now=now)
    return {"months": [m.key for m in months],
            "series": [{"name": "考核积分（本月获得）", "values": monthly_net(SubjectType.MEMBER, member.id, months)}]}


def organization_trend(principal: Principal, org_id: int, now: datetime | None = None) -> dict:
    """The organization's own points and, labelled apart, the sum of its members' points: each month's of the
    members who belonged at its end (the running month's: now), so a closed month never shifts."""
    org = get_organization(principal, org_id)
    now = now or utcnow()
    months = last_months(now=now)
    return {"months": [m.key for m in months], "series": [
        {"name": "组织自身积分", "values": monthly_net(SubjectType.ORGANIZATION, org.id, months)},
        {"name": "本组织党员积分之和", "values": _members_monthly_net(org, months, now)},
    ]}


def _members_monthly_net(org: Organization, months: list[Period], now: datetime) -> list:
    """Σ net assessment points per month of the members belonging to ``org``'s subtree at the month's end, placed
    by ``lifecycle.membership.branch_at``. Three indexed reads — the members who ever belonged there, their
    affiliations, their month totals — and the placing in Python: ``placed_at`` would scan every member and
    affiliation of the city, each month."""
    branches = set(db.session.scalars(sa.select(Organization.id).where(Organization.path.startswith(org.path))))
    ids = set(db.session.scalars(sa.union(sa.select(Member.id).where(Member.branch_id.in_(branches)),
                                          sa.select(Affiliation.member_id).where(Affiliation.branch_id.in_(branches)))))
    if not ids:
        return [from_cents(0) for _ in months]
    own = {row.id: row for row in db.session.execute(
        sa.select(Member.id, Member.branch_id, Member.is_active).where(Member.id.in_(ids)))}
    spans: dict[int, list] = {}
    for row in db.session.execute(sa.select(Affiliation.member_id, Affiliation.branch_id, Affiliation.valid_from,
                                            Affiliation.valid_to).where(Affiliation.member_id.in_(ids))):
        spans.setdefault(row.member_id, []).append(row)
    totals = _member_month_totals(ids, months)
    sums = []
    for month in months:
        at = min(month.end, now)
        placed = [member_id for member_id in ids
                  if branch_at(spans.get(member_id, ()), own[member_id], at) in branches]
        sums.append(sum(totals.get((member_id, month.key), 0) for member_id in placed))
    return [from_cents(total) for total in sums]


def _member_month_totals(ids: set[int], months: list[Period]) -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        sa.select(PointTotal.subject_id, PointTotal.period, cents(PointTotal.earned) + cents(PointTotal.deducted))
        .where(PointTotal.subject_type == SubjectType.MEMBER, PointTotal.subject_id.in_(ids),
               PointTotal.ledger == LedgerName.ASSESSMENT, PointTotal.period.in_([month.key for month in months])))
    return {(subject_id, period): total for subject_id, period, total in rows}
