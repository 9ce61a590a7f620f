"""Read-only lookups the console's pages need and the API has no use case for (pick lists, histories).

Each either runs after the page's use case has authorized the object it is about, or authorizes itself
through ``domain/access`` — no rule is decided here. Candidates to move into ``domain`` when the API
needs them too.
"""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import MAX_ROW_ID, db
from points_service.domain.access import Principal, authorize, nodes_in_scope
from points_service.domain.structure import list_regions
from points_service.models import (
    ApprovalEvent,
    Organization,
    PolicyVersion,
    Region,
    RegionLevel,
    Role,
    RoleGrant,
    ScopeType,
    User,
)


def approval_events(target_type: str, target_id: int) -> list[tuple[ApprovalEvent, str]]:
    """An item's transitions, oldest first, with the deciding user's display name."""
    rows = db.session.execute(
        sa.select(ApprovalEvent, User.display_name).outerjoin(User, User.id == ApprovalEvent.actor_id)
        .where(ApprovalEvent.target_type == target_type, ApprovalEvent.target_id == target_id)
        .order_by(ApprovalEvent.at, ApprovalEvent.id))
    return [(event, name or "") for event, name in rows]


def communities_for_publishing(principal: Principal) -> list[Region]:
    """The communities a user may publish activities in (``activity.create`` decides on submit)."""
    statement = list_regions(RegionLevel.COMMUNITY)
    if not principal.is_admin:
        scope = nodes_in_scope(principal, Region, Role.COMMUNITY_ADMIN)
        if scope is None:
            return []
        statement = statement.where(Region.id.in_(scope))
    return list(db.session.scalars(statement.limit(2000)))


def grids_of(community_id: int) -> list[Region]:
    return list(db.session.scalars(list_regions(RegionLevel.GRID, community_id)))


def policy_versions(principal: Principal) -> list[PolicyVersion]:
    authorize(principal, "policy.publish")
    return list(db.session.scalars(sa.select(PolicyVersion).order_by(PolicyVersion.version.desc())))


SCOPE_MODELS = {ScopeType.ORGANIZATION: Organization, ScopeType.REGION: Region}


def scope_by_code(scope_type: ScopeType, code: str) -> int | None:
    """The id of the organization or region with this code (or this id, typed as digits); None: none. Digits
    past a row id's range name nothing and never reach the database (they would not fit its column)."""
    model = SCOPE_MODELS.get(scope_type)
    if model is None or not code:
        return None
    found = db.session.scalar(sa.select(model.id).where(model.code == code))
    if found is None and code.isascii() and code.isdigit() and int(code) <= MAX_ROW_ID:
        found = db.session.scalar(sa.select(model.id).where(model.id == int(code)))
    return found


def scope_names(grants: list[RoleGrant]) -> dict[int, str]:
    """grant id -> the name (and code) of its scope node, in two queries."""
    ids = {scope_type: {g.scope_id for g in grants if g.scope_type == scope_type} for scope_type in SCOPE_MODELS}
    nodes = {}
    for scope_type, model in SCOPE_MODELS.items():
        for node in db.session.scalars(sa.select(model).where(model.id.in_(ids[scope_type]))):
            nodes[(scope_type, node.id)] = f"{node.name}（{node.code}）"
    return {g.id: "全市" if g.scope_type == ScopeType.CITY else nodes.get((g.scope_type, g.scope_id), "（已不存在）")
            for g in grants}
