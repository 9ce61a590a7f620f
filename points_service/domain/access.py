"""Access control as data: the one place that decides whether a principal may do an action on an object.

A ``Principal`` is who is asking, with every role grant resolved to the path of its scope node. The
``RULES`` table maps each action to a predicate ``(principal, obj) -> bool``; ``authorize`` raises
``Forbidden`` when it says no. List endpoints ask ``member_scope`` for the matching SQL filter instead of
filtering in Python, so a client-supplied id never widens what a caller sees.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import core_execute, db, sql_constant
from points_service.domain.errors import Forbidden, ServiceError, Unauthorized
from points_service.models import (
    ROLE_SCOPE,
    Member,
    Organization,
    Region,
    Role,
    RoleGrant,
    ScopeType,
    StarRunStatus,
    User,
)


@dataclass(frozen=True)
class Grant:
    role: Role
    scope_type: ScopeType
    scope_id: int | None
    scope_path: str  # "" for the whole city

    def covers(self, path: str | None) -> bool:
        return path is not None and path.startswith(self.scope_path)


@dataclass(frozen=True)
class Home:
    """One of a member's own places, loaded with his principal: his grid, community and the community's two
    regions above it, his branch and its parent organization, each with its real level or kind."""
    is_region: bool
    kind: str  # a RegionLevel or an OrgKind value
    id: int
    path: str


@dataclass(frozen=True)
class Principal:
    user_id: int
    member_id: int | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    request_id: str | None = None  # carried so that audit rows name the request that caused them
    # A member's own places: boards authorize them (and name their kind) without looking them up.
    homes: tuple[Home, ...] = ()
    token_version: int = 0  # access tokens naming an older version were revoked
    # The member's own branch and community, loaded with his principal: they route what he submits to its
    # approvers without reading his member row again.
    branch_id: int | None = None
    community_id: int | None = None

    @property
    def home_regions(self) -> tuple[str, ...]:
        return tuple(home.path for home in self.homes if home.is_region)

    @property
    def home_organizations(self) -> tuple[str, ...]:
        return tuple(home.path for home in self.homes if not home.is_region)

    def home(self, is_region: bool, node_id: int) -> Home | None:
        return next((h for h in self.homes if h.is_region is is_region and h.id == node_id), None)

    def has(self, *roles: Role) -> bool:
        return any(grant.role in roles for grant in self.grants)

    def scopes(self, *roles: Role) -> list[Grant]:
        return [grant for grant in self.grants if grant.role in roles]

    @property
    def is_admin(self) -> bool:
        return self.has(Role.ADMIN)


def principal_for(user: User, request_id: str | None = None) -> Principal:
    """The principal of a user already in hand (the console, tests), active or not."""
    return _principal_of_rows(_grant_rows(user.id), request_id)


def load_principal(user_id: int, request_id: str | None = None) -> Principal | None:
    """An active user's principal, or None: one statement, since every API request asks for it."""
    rows = _grant_rows(user_id)
    return _principal_of_rows(rows, request_id) if rows and _usable(rows[0]) else None


def load_acting_member(user_id: int, request_id: str | None = None) -> Principal | None:
    """An active user's principal for acting as himself only, or None: his member, branch and community, without
    his grants or his places, in one lookup by primary keys. Every action a role allows is refused to a principal
    without grants, so a view that loads this one can only be narrowed by it, never widened. It refuses what
    ``load_principal`` refuses: a disabled account, a deactivated member (and, in the caller, a revoked token)."""
    row = core_execute(_acting_member_statement(), {"user_id": user_id}).first()
    if row is None or not _usable(row):
        return None
    return Principal(user_id=row.id, member_id=row.member_id, request_id=request_id, token_version=row.token_version,
                     branch_id=row.member_branch_id, community_id=row.member_community_id)


def _usable(row) -> bool:
    # A deactivated member's account fails at once, whatever tokens it still holds (domain/lifecycle).
    return row.is_active and row.member_active is not False


HOME_NODES = (("grid", Region, True), ("community", Region, True), ("community_up", Region, True),
              ("community_up2", Region, True), ("branch", Organization, False), ("branch_up", Organization, False))


@functools.cache
def _grant_statement() -> sa.Select:
    """The user and each grant with its scope node's path (LEFT JOINs: a member has no grants), and the member's
    own places (``HOME_NODES``: each one's id, level or kind, and path)."""
    users, grants, members = User.__table__, RoleGrant.__table__, Member.__table__
    orgs, regions = Organization.__table__.alias("org"), Region.__table__.alias("region")
    home = {name: model.__table__.alias(name) for name, model, _ in HOME_NODES}
    joined = (users.outerjoin(grants, grants.c.user_id == users.c.id)
              .outerjoin(orgs, sa.and_(grants.c.scope_type == sql_constant(ScopeType.ORGANIZATION),
                                       orgs.c.id == grants.c.scope_id))
              .outerjoin(regions, sa.and_(grants.c.scope_type == sql_constant(ScopeType.REGION),
                                          regions.c.id == grants.c.scope_id))
              .outerjoin(members, members.c.id == users.c.member_id)
              .outerjoin(home["grid"], home["grid"].c.id == members.c.grid_id)
              .outerjoin(home["community"], home["community"].c.id == members.c.community_id)
              .outerjoin(home["community_up"], home["community_up"].c.id == home["community"].c.parent_id)
              .outerjoin(home["community_up2"], home["community_up2"].c.id == home["community_up"].c.parent_id)
              .outerjoin(home["branch"], home["branch"].c.id == members.c.branch_id)
              .outerjoin(home["branch_up"], home["branch_up"].c.id == home["branch"].c.parent_id))
    places = [column.label(f"{name}_{column.name}") for name, model, _ in HOME_NODES for column in
              (home[name].c.id, home[name].c.level if model is Region else home[name].c.kind, home[name].c.path)]
    return (sa.select(*_account_columns(users, members), grants.c.role, grants.c.scope_type, grants.c.scope_id,
                      sa.func.coalesce(orgs.c.path, regions.c.path).label("path"), *places)
            .select_from(joined).where(users.c.id == sa.bindparam("user_id")).order_by(grants.c.id))


def _account_columns(users: sa.Table, members: sa.Table) -> tuple:
    return (users.c.id, users.c.member_id, users.c.is_active, users.c.token_version,
            members.c.is_active.label("member_active"), members.c.branch_id.label("member_branch_id"),
            members.c.community_id.label("member_community_id"))


@functools.cache
def _acting_member_statement() -> sa.Select:
    users, members = User.__table__, Member.__table__
    return (sa.select(*_account_columns(users, members))
            .select_from(users.outerjoin(members, members.c.id == users.c.member_id))
            .where(users.c.id == sa.bindparam("user_id")))


def _homes_of_row(row) -> tuple[Home, ...]:
    homes = []
    for name, model, is_region in HOME_NODES:
        node_id, kind = getattr(row, f"{name}_id"), getattr(row, f"{name}_{'level' if model is Region else 'kind'}")
        if node_id is not None:
            homes.append(Home(is_region, str(kind), node_id, getattr(row, f"{name}_path")))
    return tuple(homes)


def _grant_rows(user_id: int) -> list:
    return core_execute(_grant_statement(), {"user_id": user_id}).all()


def _principal_of_rows(rows: list, request_id: str | None) -> Principal:
    """Each grant resolved to its scope's path. A grant whose scope type does not fit its role is dropped: a
    city scope resolves to the empty path, which covers everything, so a mis-written row must narrow access,
    never widen it. A grant on a deleted node gets a path nothing starts with, so it grants nothing."""
    grants = tuple(
        Grant(row.role, row.scope_type, row.scope_id,
              "" if row.scope_type == ScopeType.CITY else (row.path or "/missing/"))
        for row in rows
        if row.role is not None and ROLE_SCOPE.get(row.role) == row.scope_type
    )
    first = rows[0]
    return Principal(user_id=first.id, member_id=first.member_id, grants=grants, request_id=request_id,
                     homes=_homes_of_row(first), token_version=first.token_version,
                     branch_id=first.member_branch_id, community_id=first.member_community_id)


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
    """The community admin of the report's community (or an admin); never one's own report or submission."""
    own = report.submitted_by_id == principal.user_id or (
        report.subject_type == "member" and report.subject_id == principal.member_id)
    return not own and can_administer_community_of(principal, report)


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
