"""Who is asking: a ``Principal`` (an account, its member, every role grant resolved to the path of its scope node
and the member's own places), loaded from the database once per request, and the acting member's narrower one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlalchemy as sa

from points_service.db import core_execute, sql_constant
from points_service.models import ROLE_SCOPE, Member, Organization, Region, Role, RoleGrant, ScopeType, User


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
