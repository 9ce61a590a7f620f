"""Where a member or an organization sits on a board (its scope ids), now or at a period's end."""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import core_execute, db
from points_service.domain.boards.keys import Placement
from points_service.models import Affiliation, Member, Organization, OrgKind, Region, RegionLevel, SubjectType
from points_service.transactions import per_transaction


def region_ancestry() -> dict[int, dict[str, int]]:
    """For every region: the ids of itself and its ancestors by level (``{"district": 4, "street": 7, ...}``).

    One query over the region tree (a city holds a few thousand regions)."""
    rows = db.session.execute(sa.select(Region.id, Region.level, Region.path)).all()
    level_of = {region_id: RegionLevel(level) for region_id, level, _ in rows}
    return {
        region_id: {str(level_of[a]): a for a in (int(p) for p in path.strip("/").split("/") if p) if a in level_of}
        for region_id, _, path in rows
    }


def _region_chain() -> tuple[list, list]:
    """Aliases for a region and its ancestors (a region has at most ``len(RegionLevel) - 1`` of them), and their
    (id, level) columns: joined by primary key, parent after parent."""
    hops = [aliased(Region) for _ in RegionLevel]
    return hops, [column for hop in hops for column in (hop.id, hop.level)]


def _up_the_chain(statement, hops: list):
    for child, parent in zip(hops, hops[1:], strict=False):
        statement = statement.outerjoin(parent, parent.id == child.parent_id)
    return statement


def _levels(values) -> dict[str, int]:
    """``{"district": 4, "street": 7, ...}`` from the chain's (id, level) columns."""
    pairs = iter(values)
    return {str(level): region_id for region_id, level in zip(pairs, pairs, strict=True) if region_id is not None}


def _department_of(org_path: str) -> int | None:
    ids = [int(p) for p in org_path.strip("/").split("/") if p]
    return ids[0] if ids else None


@per_transaction
def department_of(org_id: int) -> int | None:
    """The department an organization belongs to (itself for a department), from its path. A path is set when
    the organization is created and never changes, so a transaction reads each one once (a roster import moves
    thousands of members between a few branches)."""
    path = core_execute(_path_statement(), {"org_id": org_id}).scalar()
    return _department_of(path) if path is not None else None


@functools.cache
def _path_statement() -> sa.Select:
    return sa.select(Organization.path).where(Organization.id == sa.bindparam("org_id"))


@per_transaction
def placement(branch_id: int, community_id: int, grid_id: int | None) -> Placement:
    """The scope ids of a member affiliated to (branch, community, grid): one statement for the branch's path
    and the community's regions, once per transaction (a roster import places thousands of members in a few
    branches and communities; nodes' paths never change)."""
    row = core_execute(_placement_statement(), {"branch_id": branch_id, "community_id": community_id}).first()
    if row:
        path, regions = row[0] or "", _levels(row[1:])
    else:  # no such community: no regions, the branch's path alone
        path = db.session.scalar(sa.select(Organization.path).where(Organization.id == branch_id)) or ""
        regions = {}
    return Placement(district_id=regions.get("district"), street_id=regions.get("street"),
                     community_id=community_id, grid_id=grid_id, branch_id=branch_id,
                     department_id=_department_of(path))


@functools.cache
def _placement_statement() -> sa.Select:
    """Built once: building the region chain's aliases cost more than running it (the first credit of a
    period places the member)."""
    hops, columns = _region_chain()
    branch_path = sa.select(Organization.path).where(Organization.id == sa.bindparam("branch_id")).scalar_subquery()
    return (_up_the_chain(sa.select(branch_path, *columns).select_from(hops[0]), hops)
            .where(hops[0].id == sa.bindparam("community_id")))


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
        member = db.session.get(Member, member_id)  # on the credit path already loaded (and locked)
        where = (member.branch_id, member.community_id, member.grid_id)
    return placement(*where)


def organization_placement(org_id: int) -> Placement:
    """An organization's scopes: its department, itself when a branch, and the community it is paired with
    (a branch takes its department's pairing)."""
    return organization_placements([org_id])[org_id]


def organization_placements(org_ids) -> dict[int, Placement]:
    """``organization_placement`` of several organizations, in one statement when their departments are among
    them (a member's branch and department, as on the write path)."""
    found = _organizations_with_regions(set(org_ids))
    missing = {_department_of(path) for path, _, _ in found.values()} - set(found)
    found |= _organizations_with_regions(missing) if missing else {}
    placements = {}
    for org_id in org_ids:
        path, kind, own = found[org_id]
        department_id = _department_of(path)
        _, _, paired = found[department_id]
        regions = own if own["community"] is not None else paired
        placements[org_id] = Placement(district_id=regions.get("district"), street_id=regions.get("street"),
                                       community_id=regions["community"],
                                       branch_id=org_id if kind == OrgKind.BRANCH else None,
                                       department_id=department_id)
    return placements


def _organizations_with_regions(org_ids: set[int]) -> dict[int, tuple[str, OrgKind, dict]]:
    """id → (path, kind, {"community": paired community id, level: region id on its path})."""
    rows = core_execute(_organizations_statement(), {"org_ids": sorted(org_ids)})
    return {org_id: (path, OrgKind(kind), {**_levels(chain), "community": paired})
            for org_id, path, kind, paired, *chain in rows}


@functools.cache
def _organizations_statement() -> sa.Select:
    hops, columns = _region_chain()
    return (_up_the_chain(
        sa.select(Organization.id, Organization.path, Organization.kind, Organization.paired_community_id, *columns)
        .outerjoin(hops[0], hops[0].id == Organization.paired_community_id), hops)
        .where(Organization.id.in_(sa.bindparam("org_ids", expanding=True))))


def subject_placement(subject_type: SubjectType, subject_id: int, at: datetime | None = None) -> Placement:
    if subject_type == SubjectType.MEMBER:
        return member_placement(subject_id, at)
    return organization_placement(subject_id)
