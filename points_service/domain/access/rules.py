"""What a principal may do: the ``RULES`` table maps each action to a predicate ``(principal, obj) -> bool``;
``authorize`` raises ``Forbidden`` when it says no, and ``member_scope``/``nodes_in_scope`` give list endpoints the
matching SQL filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db
from points_service.domain.access.principals import Principal
from points_service.domain.errors import Forbidden, ServiceError, Unauthorized
from points_service.models import Member, Organization, Region, Report, Role, StarRunStatus, SubjectType

ORG_ROLES = (Role.BRANCH_SECRETARY, Role.ORG_ADMIN, Role.HR)
ORG_MANAGERS = (Role.BRANCH_SECRETARY, Role.ORG_ADMIN)


def _covers_org(principal: Principal, roles: tuple[Role, ...], org_path: str | None) -> bool:
    return any(grant.covers(org_path) for grant in principal.scopes(*roles))


def _covers_region(principal: Principal, region_path: str | None) -> bool:
    return any(grant.covers(region_path) for grant in principal.scopes(Role.COMMUNITY_ADMIN))


def can_view_member(principal: Principal, member: Member) -> bool:
    return (
        principal.is_admin
        or principal.member_id == member.id
        or _covers_org(principal, ORG_ROLES, member.branch.path)
        or _covers_region(principal, member.community.path)
    )


def can_view_organization(principal: Principal, org: Organization) -> bool:
    paired = org.paired_community.path if org.paired_community else None
    own_branch = principal.member_id is not None and _member_branch_path(principal).startswith(org.path)
    return (
        principal.is_admin
        or own_branch
        or _covers_org(principal, ORG_ROLES, org.path)
        or _covers_region(principal, paired)
    )


def can_manage_organization(principal: Principal, org: Organization) -> bool:
    return principal.is_admin or _covers_org(principal, ORG_MANAGERS, org.path)


def can_administer_region(principal: Principal, region: Region) -> bool:
    return principal.is_admin or _covers_region(principal, region.path)


def can_import_roster(principal: Principal, kind: str) -> bool:
    """Admins import everything; HR imports members (each row is then checked against its scope)."""
    return principal.is_admin or (kind == "members" and principal.has(Role.HR))


def can_import_member_into(principal: Principal, branch: Organization) -> bool:
    """HR may place imported members only in branches inside its own organization subtree."""
    return principal.is_admin or _covers_org(principal, (Role.HR,), branch.path)


def can_manage_member_status(principal: Principal, member: Member) -> bool:
    """Deactivate, reactivate or transfer a member: admins, and HR or org admins over his branch."""
    return principal.is_admin or _covers_org(principal, (Role.HR, Role.ORG_ADMIN), member.branch.path)


def can_place_member_in(principal: Principal, branch: Organization) -> bool:
    """Where a transfer may take a member: any branch for admins, HR's and org admins' own subtrees."""
    return principal.is_admin or _covers_org(principal, (Role.HR, Role.ORG_ADMIN), branch.path)


def is_admin(principal: Principal, _obj=None) -> bool:
    return principal.is_admin


def can_export_hr(principal: Principal, org: Organization | None) -> bool:
    if org is None:
        return principal.is_admin
    return principal.is_admin or _covers_org(principal, (Role.HR, Role.ORG_ADMIN), org.path)


def has_hr_export_scope(principal: Principal, _obj=None) -> bool:
    """Who may export annual scores without naming an organization: admins (everything) and HR or org
    admins (their own organization subtrees, the same roles ``can_export_hr`` accepts)."""
    return principal.is_admin or principal.has(Role.HR, Role.ORG_ADMIN)


def _member_branch_path(principal: Principal) -> str:
    member = db.session.get(Member, principal.member_id)
    return member.branch.path if member else "/missing/"


def can_report_as_member(principal: Principal, member: Member) -> bool:
    """Only the member himself reports to his residence community or self-reports service."""
    return principal.member_id is not None and principal.member_id == member.id


def can_administer_community_of(principal: Principal, obj) -> bool:
    """Community admins (or admins) act on reports and activities of the communities they cover."""
    return principal.is_admin or _covers_region(principal, obj.community.path)


def can_manage_activity(principal: Principal, activity) -> bool:
    if can_administer_community_of(principal, activity):
        return True
    org = db.session.get(Organization, activity.proposed_by_org_id) if activity.proposed_by_org_id else None
    return org is not None and _covers_org(principal, ORG_MANAGERS, org.path)


def can_decide_record(principal: Principal, record) -> bool:
    """The approver the record was routed to, within scope; never one's own record."""
    own = record.submitted_by_id == principal.user_id or (
        record.subject_type == "member" and record.subject_id == principal.member_id)
    if own:
        return False
    if principal.is_admin:
        return True
    if record.route_role == Role.BRANCH_SECRETARY:
        branch = db.session.get(Organization, record.route_scope_id)
        return branch is not None and _covers_org(principal, (Role.BRANCH_SECRETARY,), branch.path)
    if record.route_role == Role.COMMUNITY_ADMIN:
        community = db.session.get(Region, record.route_scope_id)
        return community is not None and _covers_region(principal, community.path)
    return False


def can_decide_report(principal: Principal, report) -> bool:
    """The community admin of the report's community (or an admin); never one's own report or submission.
    ``report_decide_scope`` is the same rule in SQL (what the console's 报到 count counts)."""
    own = report.submitted_by_id == principal.user_id or (
        report.subject_type == "member" and report.subject_id == principal.member_id)
    return not own and can_administer_community_of(principal, report)


def report_decide_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL filter over ``Report`` rows ``can_decide_report`` allows: to a community under his community-admin
    grants (any, for admins), neither submitted by him nor about himself."""
    clauses: list[ColumnElement[bool]] = [
        sa.or_(Report.submitted_by_id.is_(None), Report.submitted_by_id != principal.user_id)]
    if principal.member_id is not None:
        clauses.append(sa.not_(sa.and_(Report.subject_type == SubjectType.MEMBER,
                                       Report.subject_id == principal.member_id)))
    if not principal.is_admin:
        communities = nodes_in_scope(principal, Region, Role.COMMUNITY_ADMIN)
        clauses.append(sa.false() if communities is None else Report.community_id.in_(communities))
    return sa.and_(*clauses)


def can_view_report_status(principal: Principal, org: Organization) -> bool:
    """Who has (not) reported in an organization: its secretaries, org admins and HR, and admins."""
    return principal.is_admin or _covers_org(principal, ORG_ROLES, org.path)


def can_decide_any(principal: Principal, _obj=None) -> bool:
    """Who has an approvals queue at all (org admins approve their organization's activity proposals)."""
    return principal.is_admin or principal.has(Role.BRANCH_SECRETARY, Role.COMMUNITY_ADMIN, Role.ORG_ADMIN)


@dataclass(frozen=True)
class BoardNode:
    """What authorizing a board needs of the region or organization it ranks: which of the two, and its path
    (boards read it with one Core lookup instead of loading the ORM object)."""
    is_region: bool
    path: str


def can_view_board(principal: Principal, node: BoardNode | None) -> bool:
    """Leaderboards: the whole-city board (``node`` None) is open to every signed-in user; a member sees the
    boards of the regions he lives in and the organizations he belongs to; community admins the regions they
    administer; secretaries, org admins and HR the organizations they cover; admins all."""
    if node is None or principal.is_admin:
        return True
    if node.is_region:
        own = any(path.startswith(node.path) for path in principal.home_regions)
        return own or _covers_region(principal, node.path)
    own = any(path.startswith(node.path) for path in principal.home_organizations)
    return own or _covers_org(principal, ORG_ROLES, node.path)


def can_review_star_runs(principal: Principal, _obj=None) -> bool:
    """Admins, and community admins (their lists are narrowed to their communities' candidates)."""
    return principal.is_admin or principal.has(Role.COMMUNITY_ADMIN)


def can_object_to_star_run(principal: Principal, run) -> bool:
    """Anyone signed in objects to a published run's candidates (the use case checks the publicity window). A run
    not yet published, or withdrawn, exists only for its reviewers."""
    return run.status in (StarRunStatus.PUBLISHED, StarRunStatus.FINALIZED) or can_review_star_runs(principal)


def is_member(principal: Principal, _obj=None) -> bool:
    return principal.member_id is not None


def can_hand_over_order(principal: Principal, order) -> bool:
    """积分超市 pick-up and admin cancel: the admins of the item's scope or of the member's community."""
    return principal.is_admin or _covers_region(principal, order.item.region.path) or _covers_region(
        principal, order.community.path)


def has_market_desk(principal: Principal, _obj=None) -> bool:
    """Who keeps a 积分超市 catalogue or order queue at all (their lists are narrowed to their scopes)."""
    return principal.is_admin or principal.has(Role.COMMUNITY_ADMIN)


def is_signed_in(principal: Principal, _obj=None) -> bool:
    return True  # ``allowed``/``authorize`` already refuse anonymous callers


Rule = Callable[[Principal, object], bool]

RULES: dict[str, Rule] = {
    "member.view": can_view_member,
    "organization.view": can_view_organization,
    "organization.manage": can_manage_organization,
    "region.administer": can_administer_region,
    "roster.import": can_import_roster,
    "roster.import_member": can_import_member_into,
    "member.manage_status": can_manage_member_status,  # deactivate, reactivate, transfer (domain/lifecycle)
    "member.place_in": can_place_member_in,  # the branch a transfer moves a member into
    "users.manage": is_admin,
    "audit.view": is_admin,
    "policy.publish": is_admin,
    "ledger.correct": is_admin,
    "hr.export": can_export_hr,
    "hr.export_own_scope": has_hr_export_scope,  # no organization named: HR's own subtrees
    "annual.settle": is_admin,
    "report.submit_member": can_report_as_member,
    "report.decide": can_decide_report,
    "report.status": can_view_report_status,
    "activity.create": can_administer_region,
    "activity.manage": can_manage_activity,
    "activity.accept": can_administer_community_of,  # the host community accepts a proposed activity
    "record.decide": can_decide_record,
    "approvals.list": can_decide_any,
    "star.run": is_admin,  # propose, publish, decide objections, finalize 业务之星 runs
    "star.review": can_review_star_runs,  # runs and every candidate's reasons (community admins: theirs)
    "star.object": can_object_to_star_run,  # anyone may object to a candidate during publicity (公示)
    "stars.view": is_signed_in,  # published winners
    "red_flag.award": is_admin,
    "red_flags.view": is_signed_in,
    "calendar.manage": is_admin,  # holidays and 调休 working days
    "leaderboard.view": can_view_board,
    "market.manage": can_administer_region,  # items offered in a region: its admins (community and above)
    "market.desk": has_market_desk,  # the admin catalogue and order queue, narrowed to one's scopes
    "market.order": is_member,  # members order, see and cancel their own orders
    "market.hand_over": can_hand_over_order,  # pick-up and cancel with a reason
    "notifications.own": is_member,  # a member's inbox and subscribe-message grants
    "notifications.monitor": is_admin,  # the outbox: sent, failed and why
}


_ADMIN = (Role.ADMIN,)
_REGION_ADMINS = (Role.ADMIN, Role.COMMUNITY_ADMIN)
_ORG_MANAGERS = (Role.ADMIN, *ORG_MANAGERS)
# The roles without which an action is refused whatever its object: an endpoint behind ``could_be_allowed``
# answers 403 before it reads its body or looks anything up. Actions members perform are not listed.
ACTION_ROLES: dict[str, tuple[Role, ...]] = {
    "users.manage": _ADMIN, "policy.publish": _ADMIN, "ledger.correct": _ADMIN, "annual.settle": _ADMIN,
    "star.run": _ADMIN, "red_flag.award": _ADMIN, "calendar.manage": _ADMIN,
    "roster.import": (Role.ADMIN, Role.HR),
    "member.manage_status": (Role.ADMIN, Role.HR, Role.ORG_ADMIN),
    "organization.manage": _ORG_MANAGERS,
    "activity.create": _REGION_ADMINS, "report.decide": _REGION_ADMINS, "market.manage": _REGION_ADMINS,
    "market.hand_over": _REGION_ADMINS,
    "activity.manage": (*_REGION_ADMINS, *ORG_MANAGERS),
    "approvals.list": (Role.ADMIN, Role.BRANCH_SECRETARY, Role.COMMUNITY_ADMIN, Role.ORG_ADMIN),
}


def could_be_allowed(principal: Principal, action: str) -> bool:
    """False when no object could make ``action`` allowed for this principal (he lacks every role it needs)."""
    return principal.has(*ACTION_ROLES[action])


def allowed(principal: Principal | None, action: str, obj=None) -> bool:
    if principal is None:
        return False
    return RULES[action](principal, obj)


def authorize(principal: Principal | None, action: str, obj=None) -> None:
    if principal is None:
        raise Unauthorized()
    if not RULES[action](principal, obj):
        raise Forbidden()


def authorize_or_hide(principal: Principal | None, action: str, obj, hidden: ServiceError) -> None:
    """``authorize`` for an object named by the caller: a refusal is ``hidden`` (the object's own not-found
    error), so an object outside one's scope answers exactly like an id that names nothing."""
    if principal is None:
        raise Unauthorized()
    if not RULES[action](principal, obj):
        raise hidden


def nodes_in_scope(principal: Principal, model: type[Organization] | type[Region], *roles: Role) -> sa.Select | None:
    """Ids of the ``model`` nodes under the principal's grants of ``roles`` (None without such grants):
    the one way every scoped list turns grants into SQL."""
    paths = [grant.scope_path for grant in principal.scopes(*roles)]
    if not paths:
        return None
    return sa.select(model.id).where(sa.or_(*(model.path.startswith(path) for path in paths)))


def member_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL filter over ``Member`` rows this principal may list."""
    if principal.is_admin:
        return sa.true()
    clauses: list[ColumnElement[bool]] = []
    if principal.member_id is not None:
        clauses.append(Member.id == principal.member_id)
    if (orgs := nodes_in_scope(principal, Organization, *ORG_ROLES)) is not None:
        clauses.append(Member.branch_id.in_(orgs))
    if (regions := nodes_in_scope(principal, Region, Role.COMMUNITY_ADMIN)) is not None:
        clauses.append(Member.community_id.in_(regions))
    return sa.or_(*clauses) if clauses else sa.false()
