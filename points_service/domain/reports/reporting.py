"""双报到: a member reports to his residence community; a department organization reports to its paired
community with the co-building agreement's three lists (资源清单, 需求清单, 项目清单). The community admin
confirms (报到回执) or rejects with a reason.

- One live (pending or confirmed) report per subject and half year: the partial unique index decides, also
  under concurrency; a rejected report may be submitted again in the same half.
- Decisions are compare-and-set UPDATEs (``WHERE status = 'pending'``): of two deciders exactly one wins,
  the other gets ``invalid_transition``. Each decision writes an ApprovalEvent and an audit row.
- Confirmation credits the policy's report item in the same transaction: a member's first confirmed report
  ever earns the ``member_report`` event's item, each later one ``member_rereport`` (the policy's caps limit
  them); organizations earn ``org_report``. Pending and rejected reports never earn anything.
- Who has (not) reported, and the report rate, are read in ``reports.rates``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db, utcnow
from points_service.domain import notifications
from points_service.domain.access import (
    ORG_ROLES,
    Principal,
    authorize,
    authorize_or_hide,
    can_administer_community_of,
    nodes_in_scope,
    report_decide_scope,
)
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from points_service.domain.ledger.credit import Fact, credit, lock_subject
from points_service.domain.lifecycle.guard import lock_active_member
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled, has_waiting_change
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.domain.structure import find_community, find_organization, pair_organization, transfer_member
from points_service.models import (
    ApprovalEvent,
    LedgerEntry,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    Report,
    ReportStatus,
    Role,
    ScheduledChangeKind,
    SourceType,
    SubjectType,
)


class AlreadyReported(Conflict):
    code, message = "already_reported", "本半年度已提交报到（待确认或已确认），请勿重复提交"


def current_half(now: datetime | None = None) -> Period:
    """The half year (Asia/Shanghai) an instant falls in: 2026-07-01 00:30+08:00 is already 2026-H2."""
    return period_containing(now or utcnow(), PeriodKind.HALF)


# ---------------------------------------------------------------------------------------------- submitting

def submit_member_report(actor: Principal, community_id: int, *, now: datetime | None = None) -> Report:
    """The signed-in member reports to a residence community. Who reports comes from the token, never the body."""
    if actor.member_id is None:
        raise Forbidden("只有党员本人可以到社区报到")
    member = lock_active_member(actor.member_id)  # held to the commit: his deactivation closes it or refuses it
    authorize(actor, "report.submit_member", member)
    community = find_community(community_id)
    return _submit(actor, Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=community.id),
                   now)


def submit_org_report(actor: Principal, org_id: int, community_id: int, *, resources: list[str], needs: list[str],
                      projects: list[str], now: datetime | None = None) -> Report:
    """A department organization's report with the co-building agreement's three lists."""
    org = find_organization(org_id)
    authorize_or_hide(actor, "organization.view", org, NotFound("组织不存在"))  # unseen: like a missing one
    authorize(actor, "organization.manage", org)
    if org.kind != OrgKind.DEPARTMENT:
        raise ValidationFailed({"organization_id": ["只有部门党组织可以组织报到；党支部由所属部门党组织统一报到"]})
    if not (resources or projects):
        raise ValidationFailed({"projects": ["资源清单和项目清单至少填写一项"]})
    community = find_community(community_id)
    report = Report(subject_type=SubjectType.ORGANIZATION, subject_id=org.id, community_id=community.id,
                    resources=list(resources), needs=list(needs), projects=list(projects))
    return _submit(actor, report, now)


def _submit(actor: Principal, report: Report, now: datetime | None) -> Report:
    now = now or utcnow()
    report.half, report.status = current_half(now).key, ReportStatus.PENDING
    report.submitted_by_id, report.submitted_at = actor.user_id, now
    db.session.add(report)
    try:
        db.session.flush()
    except IntegrityError:
        # The partial unique index: a live report of this subject and half exists, perhaps committed just now.
        db.session.rollback()
        raise AlreadyReported() from None
    audit("report.submit", actor=actor, target=report,
          detail={"subject": f"{report.subject_type}:{report.subject_id}", "community_id": report.community_id,
                  "half": report.half})
    db.session.commit()
    return report


# ------------------------------------------------------------------------------------------------ deciding

def confirm_report(actor: Principal, report_id: int, *, grid_id: int | None = None,
                   now: datetime | None = None) -> Report:
    """Confirm (报到回执): credit the report item and settle the member's community and grid, all at once."""
    now = now or utcnow()
    report = _report_to_decide(actor, report_id)
    grid = _grid_for(report, grid_id)
    # The subject before the report's row (the order of every writer to him, his deactivation's included), and
    # before asking "first report ever?": two confirmations for one member then run one after the other on
    # PostgreSQL (SQLite serializes writers anyway), so only one can be the first.
    lock_subject(report.subject_type, report.subject_id)
    _decide(report, ReportStatus.CONFIRMED, actor, now, grid_id=grid.id if grid else None)
    entries = _credit_confirmed(report, actor, now)
    _settle_where_subject_belongs(report, grid, now)
    _record_decision(actor, report, now, comment="", detail={
        "grid_id": report.grid_id, "item_code": entries[0].item_code if entries else None,
        "points": str(entries[0].points) if entries else "0"})
    db.session.commit()
    return report


def reject_report(actor: Principal, report_id: int, reason: str, *, now: datetime | None = None) -> Report:
    """Reject with a reason the subject can read; the subject may submit again in the same half."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": ["驳回时须填写理由"]})
    now = now or utcnow()
    report = _report_to_decide(actor, report_id)
    _decide(report, ReportStatus.REJECTED, actor, now, reason=reason)
    _record_decision(actor, report, now, comment=reason, detail={"reason": reason})
    db.session.commit()
    return report


def _report_to_decide(actor: Principal, report_id: int) -> Report:
    report = db.session.get(Report, report_id)
    if report is None:
        raise NotFound("报到记录不存在")
    if not can_administer_community_of(actor, report):  # another community's report does not exist for him
        raise NotFound("报到记录不存在")
    authorize(actor, "report.decide", report)  # his own report: 403
    return report


def _grid_for(report: Report, grid_id: int | None) -> Region | None:
    if grid_id is None:
        return None
    if report.subject_type != SubjectType.MEMBER:
        raise ValidationFailed({"grid_id": ["组织报到不分配网格"]})
    grid = db.session.get(Region, grid_id)
    if grid is None or grid.level != RegionLevel.GRID or grid.parent_id != report.community_id:
        raise ValidationFailed({"grid_id": ["网格不存在或不属于报到社区"]})
    return grid


def _decide(report: Report, to: ReportStatus, actor: Principal, now: datetime, **changes) -> None:
    """Compare-and-set from pending: the database lets exactly one of two concurrent deciders through."""
    result = db.session.execute(
        sa.update(Report).where(Report.id == report.id, Report.status == ReportStatus.PENDING)
        .values(status=to, decided_by_id=actor.user_id, decided_at=now, **changes))
    if result.rowcount != 1:
        db.session.rollback()
        raise InvalidTransition("该报到已处理，不能再次确认或驳回")


def _credit_confirmed(report: Report, actor: Principal, now: datetime) -> list[LedgerEntry]:
    policy = policy_in_force(now)
    item = policy.event_item(_report_event(report))
    fact = Fact(SubjectType(report.subject_type), report.subject_id, item.code, SourceType.REPORT, str(report.id),
                report.submitted_at)
    return credit(fact, actor_id=actor.user_id, at=now, policy=policy)


def _report_event(report: Report) -> str:
    if report.subject_type == SubjectType.ORGANIZATION:
        return "org_report"
    confirmed_before = sa.select(Report.id).where(
        Report.subject_type == SubjectType.MEMBER, Report.subject_id == report.subject_id,
        Report.status == ReportStatus.CONFIRMED, Report.id != report.id)
    return "member_rereport" if db.session.scalar(sa.select(confirmed_before.exists())) else "member_report"


def _settle_where_subject_belongs(report: Report, grid: Region | None, now: datetime) -> None:
    """The confirmed community becomes the member's residence (with the assigned grid), or the organization's
    pairing: the co-building agreement is with that community."""
    community = report.community
    if report.subject_type == SubjectType.ORGANIZATION:
        pair_organization(db.session.get(Organization, report.subject_id), community, now)  # no-op when unchanged
        return
    member = db.session.get(Member, report.subject_id)
    if grid is None and member.community_id == community.id:
        grid = member.grid  # confirming without a grid keeps the grid he has in that community
    moves = (member.community_id, member.grid_id) != (community.id, grid and grid.id)
    if moves and has_waiting_change(member.id, ScheduledChangeKind.TRANSFER):
        raise ChangeAlreadyScheduled()  # the transfer would put him back in his old residence on its date
    transfer_member(member, member.branch, community, grid, when=now)  # no-op when nothing changes


def _record_decision(actor: Principal, report: Report, now: datetime, *, comment: str, detail: dict) -> None:
    to = ReportStatus(report.status)
    db.session.add(ApprovalEvent(target_type="report", target_id=report.id, from_status=ReportStatus.PENDING.value,
                                 to_status=to.value, actor_id=actor.user_id, at=now, comment=comment[:200]))
    action = "report.confirm" if to == ReportStatus.CONFIRMED else "report.reject"
    audit(action, actor=actor, target=report,
          detail={"subject": f"{report.subject_type}:{report.subject_id}", "half": report.half, **detail})
    notifications.report_decided(report, comment)


# ------------------------------------------------------------------------------------------------- reading

def list_reports(actor: Principal, *, status: ReportStatus | None = None, half: Period | None = None,
                 subject_type: SubjectType | None = None, to_decide: bool = False) -> sa.Select:
    """Reports the actor may see, newest first, filtered in SQL (a client-given id never widens the view);
    ``to_decide``: only those he may confirm or reject (``report.decide``)."""
    statement = sa.select(Report).where(report_scope(actor)).order_by(Report.submitted_at.desc(), Report.id.desc())
    if to_decide:
        statement = statement.where(report_decide_scope(actor))
    if status is not None:
        statement = statement.where(Report.status == status)
    if half is not None:
        statement = statement.where(Report.half == half.key)
    if subject_type is not None:
        statement = statement.where(Report.subject_type == subject_type)
    return statement


def report_scope(principal: Principal) -> ColumnElement[bool]:
    """His own reports; community admins those to their communities; secretaries, org admins and HR their
    organizations' and their members' reports; admins all."""
    if principal.is_admin:
        return sa.true()
    clauses: list[ColumnElement[bool]] = []
    if principal.member_id is not None:
        clauses.append(sa.and_(Report.subject_type == SubjectType.MEMBER, Report.subject_id == principal.member_id))
    if (communities := nodes_in_scope(principal, Region, Role.COMMUNITY_ADMIN)) is not None:
        clauses.append(Report.community_id.in_(communities))
    if (orgs := nodes_in_scope(principal, Organization, *ORG_ROLES)) is not None:
        members = sa.select(Member.id).where(Member.branch_id.in_(orgs))
        clauses.append(sa.or_(
            sa.and_(Report.subject_type == SubjectType.ORGANIZATION, Report.subject_id.in_(orgs)),
            sa.and_(Report.subject_type == SubjectType.MEMBER, Report.subject_id.in_(members))))
    return sa.or_(*clauses) if clauses else sa.false()


def describe(reports: list[Report]) -> list[dict]:
    """Reports as the API shows them; subject names and regions come in three queries, not three per report."""
    names = {
        **_names(Member, SubjectType.MEMBER, reports),
        **_names(Organization, SubjectType.ORGANIZATION, reports),
    }
    region_ids = {r.community_id for r in reports} | {r.grid_id for r in reports if r.grid_id}
    regions = {r.id: r for r in db.session.scalars(sa.select(Region).where(Region.id.in_(region_ids)))}
    return [{
        "id": r.id,
        "subject": {"type": r.subject_type, "id": r.subject_id, "name": names.get((r.subject_type, r.subject_id))},
        "community": regions[r.community_id],
        "grid": regions.get(r.grid_id),
        "half": r.half, "status": r.status,
        "resources": r.resources, "needs": r.needs, "projects": r.projects,
        "submitted_at": r.submitted_at, "decided_at": r.decided_at, "decided_by_id": r.decided_by_id,
        "reason": r.reason,
    } for r in reports]


def describe_one(report: Report) -> dict:
    return describe([report])[0]


def _names(model, subject_type: SubjectType, reports: list[Report]) -> dict:
    ids = {r.subject_id for r in reports if r.subject_type == subject_type}
    if not ids:
        return {}
    rows = db.session.execute(sa.select(model.id, model.name).where(model.id.in_(ids)))
    return {(subject_type, subject_id): name for subject_id, name in rows}
