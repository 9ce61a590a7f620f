"""Who has (not) reported: the report rate (confirmed members / members) that the secretary's view and the
red-flag rule read, one query (``confirmed_members``): of a closed half, the decisions made by its end. The
业务之星 gate and the annual settlement's 未报到 veto (``confirmed_subjects``, for members and organizations) read
the same rule."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Bundle, aliased

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.lifecycle.membership import placed_at
from points_service.domain.periods import Period, parse_period
from points_service.domain.reports.reporting import current_half
from points_service.domain.structure import find_organization
from points_service.models import Member, Organization, Region, Report, ReportStatus, SubjectType

RATE_PLACES = Decimal("0.0001")


def report_status(actor: Principal, org_id: int, half: Period | None = None, *,
                  now: datetime | None = None) -> tuple[dict, sa.Select]:
    """For a branch or department: the report rates per branch, and a statement over its members, each with
    whether he reported (the caller pages it). Secretaries, org admins and HR within scope; admins."""
    org = find_organization(org_id)
    authorize(actor, "report.status", org)
    half = half or current_half(now)
    members, cutoff = _members_of(half, now), _cutoff_of(half, now)
    counts = _branch_counts(org, half.key, members, cutoff)
    totals = tuple(sum(column) for column in zip(*(c for _, c in counts), strict=True)) if counts else (0, 0, 0)
    summary = {"organization": org, "half": half.key, **_rates(totals),
               "branches": [{"organization": branch, **_rates(c)} for branch, c in counts]}
    return summary, _member_rows(org, half.key, members, cutoff)


def report_rate(org: Organization, half: Period | str, *, this_half_only: bool = False,
                now: datetime | None = None) -> Decimal:
    """Share of the organization's members (its whole subtree; of a closed half, those who belonged at its end)
    with a confirmed report (of a closed half, confirmed by its end): by default one for that half or any earlier
    one (reported "as of" the half), or only for that half. Rounded down to 4 places so that a rate never rounds
    up past a threshold such as 0.95; 0 without members."""
    half = parse_period(half) if isinstance(half, str) else half
    members = reported = 0
    for _branch, (branch_members, ever, this_half) in _branch_counts(org, half.key, _members_of(half, now),
                                                                      _cutoff_of(half, now)):
        members += branch_members
        reported += this_half if this_half_only else ever
    return _rate(reported, members)


def _rate(reported: int, members: int) -> Decimal:
    return (Decimal(reported) / Decimal(members)).quantize(RATE_PLACES, rounding=ROUND_DOWN) if members else Decimal(0)


def _rates(counts: tuple[int, int, int]) -> dict:
    members, ever, this_half = counts
    return {"member_count": members, "reported_count": ever, "reported_this_half_count": this_half,
            "report_rate": _rate(ever, members), "half_report_rate": _rate(this_half, members)}


def confirmed_members(half_key: str, *, as_of: bool, decided_before: datetime | None = None) -> sa.Select:
    """Ids of members with a confirmed report for the half or (``as_of``) for it or any earlier one, decided
    before ``decided_before`` when given — the reading of ``report_rate``, of the status, of the selections'
    gates and of the annual 未报到 veto (a closed half, period or year reads the decisions made by its end; a later
    confirmation changes nothing)."""
    return confirmed_subjects(SubjectType.MEMBER, half_key, as_of=as_of, decided_before=decided_before)


def confirmed_subjects(subject_type: SubjectType, half_key: str, *, as_of: bool,
                       decided_before: datetime | None = None) -> sa.Select:
    """``confirmed_members`` for members or organizations (the annual settlement grades both)."""
    half_clause = Report.half <= half_key if as_of else Report.half == half_key  # "2026-H1" < "2026-H2"
    statement = sa.select(Report.subject_id).where(
        Report.subject_type == subject_type, Report.status == ReportStatus.CONFIRMED, half_clause)
    return statement if decided_before is None else statement.where(Report.decided_at < decided_before)


def _cutoff_of(half: Period, now: datetime | None) -> datetime | None:
    """A closed half reads the decisions made by its end; the running half every decision so far."""
    return half.end if half.end <= (now or utcnow()) else None


def _members_of(half: Period, now: datetime | None) -> sa.Subquery:
    """member_id, branch_id, community_id of the members a half's figures count: of a closed half, those who
    belonged at its end, where they belonged (``lifecycle.membership``, as the 流动红旗 counts them), so its figures
    never shift; of the running half, today's active members."""
    if half.end <= (now or utcnow()):
        return placed_at(half.end).subquery("members_of_half")
    return (sa.select(Member.id.label("member_id"), Member.branch_id, Member.community_id)
            .where(Member.is_active).subquery("members_of_half"))


def _branch_counts(org: Organization, half_key: str, members: sa.Subquery,
                   cutoff: datetime | None) -> list[tuple[Organization, tuple[int, int, int]]]:
    """Per organization in the subtree holding members: (members, reported as of the half, in it)."""
    ever = confirmed_members(half_key, as_of=True, decided_before=cutoff)
    this_half = confirmed_members(half_key, as_of=False, decided_before=cutoff)
    member_id = members.c.member_id
    rows = db.session.execute(
        sa.select(Organization, sa.func.count(member_id), sa.func.count(member_id).filter(member_id.in_(ever)),
                  sa.func.count(member_id).filter(member_id.in_(this_half)))
        .join(members, members.c.branch_id == Organization.id)
        .where(Organization.path.startswith(org.path))
        .group_by(Organization.id).order_by(Organization.path))
    return [(branch, (count, reported, reported_now)) for branch, count, reported, reported_now in rows]


class _MemberStatusBundle(Bundle):
    """Shapes each row as the API shows it, so a paged ``scalars()`` yields ready dicts."""

    def create_row_processor(self, query, procs, labels):
        def shape(row):
            v = dict(zip(labels, (proc(row) for proc in procs), strict=True))
            return {
                "member": {"id": v["member_id"], "name": v["member_name"]},
                "branch": {"id": v["branch_id"], "name": v["branch_name"]},
                "community": {"id": v["community_id"], "name": v["community_name"]},
                "half_status": v["half_status"],
                "reported_this_half": v["half_status"] == ReportStatus.CONFIRMED,
                "reported_ever": v["last_reported_half"] is not None,
                "last_reported_half": v["last_reported_half"],
            }
        return shape


def _member_rows(org: Organization, half_key: str, members: sa.Subquery, cutoff: datetime | None) -> sa.Select:
    """Every member of the subtree the half counts (``_members_of``) with his live report's status in the half
    (pending / confirmed / none) and the latest half he was confirmed in, up to this one (none: he never
    reported). Of a closed half, as they stood at its end: a report decided later was pending then."""
    subject = sa.and_(Report.subject_type == SubjectType.MEMBER, Report.subject_id == Member.id)
    status, live = Report.status, Report.status != ReportStatus.REJECTED
    if cutoff is not None:
        decided_later = Report.decided_at >= cutoff
        status = sa.case((decided_later, sa.literal(ReportStatus.PENDING, Report.status.type)), else_=Report.status)
        live = sa.or_(live, decided_later)
    half_status = (sa.select(status).where(subject, Report.half == half_key, live).limit(1).scalar_subquery())
    confirmed = confirmed_members(half_key, as_of=True, decided_before=cutoff).where(subject)
    last_reported = confirmed.with_only_columns(sa.func.max(Report.half)).scalar_subquery()
    branch, community = aliased(Organization), aliased(Region)
    return (
        sa.select(_MemberStatusBundle(
            "status", Member.id.label("member_id"), Member.name.label("member_name"),
            branch.id.label("branch_id"), branch.name.label("branch_name"),
            community.id.label("community_id"), community.name.label("community_name"),
            half_status.label("half_status"), last_reported.label("last_reported_half")))
        .select_from(Member)
        .join(members, members.c.member_id == Member.id)
        .join(branch, members.c.branch_id == branch.id)
        .join(community, members.c.community_id == community.id)
        .where(branch.path.startswith(org.path))
        .order_by(branch.path, Member.id))
