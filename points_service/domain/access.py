"""Access control as data: the one place that decides whether a principal may do an action on an object.

A ``Principal`` is who is asking, with every role grant resolved to the path of its scope node. The
``RULES`` table maps each action to a predicate ``(principal, obj) -> bool``; ``authorize`` raises
``Forbidden`` when it says no. List endpoints ask ``member_scope`` for the matching SQL filter instead of
filtering in Python, so a client-supplied id never widens what a caller sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db
from points_service.domain.errors import Forbidden, Unauthorized
from points_service.models import Member, Organization, Region, Role, ScopeType, User


@dataclass(frozen=True)
class Grant:
    role: Role
    scope_type: ScopeType
    scope_id: int | None
    scope_path: str  # "" for the whole city

    def covers(self, path: str | None) -> bool:
        return path is not None and path.startswith(self.scope_path)


@dataclass(frozen=True)
class Principal:
    user_id: int
    member_id: int | None = None
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    request_id: str | None = None  # carried so that audit rows name the request that caused them

    def has(self, *roles: Role) -> bool:
        return any(grant.role in roles for grant in self.grants)

    def scopes(self, *roles: Role) -> list[Grant]:
        return [grant for grant in self.grants if grant.role in roles]

    @property
    def is_admin(self) -> bool:
        return self.has(Role.ADMIN)


def principal_for(user: User, request_id: str | None = None) -> Principal:
    """Resolve a user's grants to scope paths (one query per scope type)."""
    grants = []
    for grant in user.grants:
        grants.append(Grant(grant.role, grant.scope_type, grant.scope_id, _scope_path(grant.scope_type, grant.scope_id)))
    return Principal(user_id=user.id, member_id=user.member_id, grants=tuple(grants), request_id=request_id)


def _scope_path(scope_type: ScopeType, scope_id: int | None) -> str:
    model = {ScopeType.ORGANIZATION: Organization, ScopeType.REGION: Region}.get(scope_type)
    if model is None:
        return ""
    node = db.session.get(model, scope_id)
    # A grant on a deleted node must grant nothing, so it gets a path nothing starts with.
    return node.path if node else "/missing/"


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


def is_admin(principal: Principal, _obj=None) -> bool:
    return principal.is_admin


def can_export_hr(principal: Principal, org: Organization | None) -> bool:
    if org is None:
        return principal.is_admin
    return principal.is_admin or _covers_org(principal, (Role.HR, Role.ORG_ADMIN), org.path)


def _member_branch_path(principal: Principal) -> str:
    member = db.session.get(Member, principal.member_id)
    return member.branch.path if member else "/missing/"


Rule = Callable[[Principal, object], bool]

RULES: dict[str, Rule] = {
    "member.view": can_view_member,
    "organization.view": can_view_organization,
    "organization.manage": can_manage_organization,
    "region.administer": can_administer_region,
    "roster.import": can_import_roster,
    "users.manage": is_admin,
    "audit.view": is_admin,
    "policy.publish": is_admin,
    "hr.export": can_export_hr,
}


def allowed(principal: Principal | None, action: str, obj=None) -> bool:
    if principal is None:
        return False
    return RULES[action](principal, obj)


def authorize(principal: Principal | None, action: str, obj=None) -> None:
    if principal is None:
        raise Unauthorized()
    if not RULES[action](principal, obj):
        raise Forbidden()


def member_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL filter over ``Member`` rows this principal may list."""
    if principal.is_admin:
        return sa.true()
    clauses: list[ColumnElement[bool]] = []
    if principal.member_id is not None:
        clauses.append(Member.id == principal.member_id)
    org_paths = [grant.scope_path for grant in principal.scopes(*ORG_ROLES)]
    if org_paths:
        orgs = sa.select(Organization.id).where(sa.or_(*(Organization.path.startswith(p) for p in org_paths)))
        clauses.append(Member.branch_id.in_(orgs))
    region_paths = [grant.scope_path for grant in principal.scopes(Role.COMMUNITY_ADMIN)]
    if region_paths:
        regions = sa.select(Region.id).where(sa.or_(*(Region.path.startswith(p) for p in region_paths)))
        clauses.append(Member.community_id.in_(regions))
    return sa.or_(*clauses) if clauses else sa.false()
