"""Where a member or an organization sits on a board (its scope ids), now or at a period's end."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.boards.keys import Placement
from points_service.models import Affiliation, Member, Organization, OrgKind, Region, RegionLevel, SubjectType


def region_ancestry() -> dict[int, dict[str, int]]:
    """For every region: the ids of itself and its ancestors by level (``{"district": 4, "street": 7, ...}``).

    One query over the region tree (a city holds a few thousand regions)."""
    rows = db.session.execute(sa.select(Region.id, Region.level, Region.path)).all()
    level_of = {region_id: RegionLevel(level) for region_id, level, _ in rows}
    return {
        region_id: {str(level_of[a]): a for a in (int(p) for p in path.strip("/").split("/") if p) if a in level_of}
        for region_id, _, path in rows
    }


def _ancestry_of(region_id: int | None) -> dict[str, int]:
    if region_id is None:
        return {}
    path = db.session.scalar(sa.select(Region.path).where(Region.id == region_id)) or ""
    ids = [int(p) for p in path.strip("/").split("/") if p]
    return {str(level): rid for rid, level in db.session.execute(
        sa.select(Region.id, Region.level).where(Region.id.in_(ids)))}


def _department_of(org_path: str) -> int | None:
    ids = [int(p) for p in org_path.strip("/").split("/") if p]
    return ids[0] if ids else None


def placement(branch_id: int, community_id: int, grid_id: int | None) -> Placement:
    """The scope ids of a member affiliated to (branch, community, grid)."""
    regions = _ancestry_of(community_id)
    branch_path = db.session.scalar(sa.select(Organization.path).where(Organization.id == branch_id)) or ""
    return Placement(district_id=regions.get("district"), street_id=regions.get("street"),
                     community_id=community_id, grid_id=grid_id, branch_id=branch_id,
                     department_id=_department_of(branch_path))


def member_placement(member_id: int, at: datetime | None = None) -> Placement:
    """Where the member is now (``at`` None), or where he was just before ``at`` (a closed period's end)."""
    where = None
    if at is not None:
        where = db.session.execute(
            sa.select(Affiliation.branch_id, Affiliation.community_id, Affiliation.grid_id)
            .where(Affiliation.member_id == member_id, Affiliation.valid_from < at,
                   sa.or_(Affiliation.valid_to.is_(None), Affiliation.valid_to >= at))
            .order_by(Affiliation.valid_from.desc()).limit(1)).first()
    if where is None:
        where = db.session.execute(sa.select(Member.branch_id, Member.community_id, Member.grid_id)
                                   .where(Member.id == member_id)).one()
    return placement(*where)


def organization_placement(org_id: int) -> Placement:
    """An organization's scopes: its department, itself when a branch, and the community it is paired with
    (a branch takes its department's pairing)."""
    org = db.session.get(Organization, org_id)
    department = db.session.get(Organization, org.department_id)
    community_id = org.paired_community_id or department.paired_community_id
    regions = _ancestry_of(community_id)
    return Placement(district_id=regions.get("district"), street_id=regions.get("street"),
                     community_id=community_id, branch_id=org.id if org.kind == OrgKind.BRANCH else None,
                     department_id=department.id)


def subject_placement(subject_type: SubjectType, subject_id: int, at: datetime | None = None) -> Placement:
    if subject_type == SubjectType.MEMBER:
        return member_placement(subject_id, at)
    return organization_placement(subject_id)
