"""Reading and building the two trees and the roster. Builders only flush; callers commit."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, undefer

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize_or_hide, member_scope
from points_service.domain.boards.maintain import count_member, pairing_changed, transfer_on_boards
from points_service.domain.errors import NotFound, ValidationFailed
from points_service.models import (
    REGION_LEVEL_NAMES,
    Affiliation,
    Member,
    Organization,
    OrgKind,
    Pairing,
    Region,
    RegionLevel,
)


def add_region(code: str, name: str, level: RegionLevel, parent: Region | None = None) -> Region:
    region = Region(code=code, name=name, level=level, parent=parent)
    db.session.add(region)
    db.session.flush()
    region.path = f"{parent.path if parent else '/'}{region.id}/"
    return region


def add_organization(code: str, name: str, kind: OrgKind, parent: Organization | None = None,
                     paired_community: Region | None = None, since: datetime | None = None) -> Organization:
    """A new organization, paired with ``paired_community`` from ``since`` (default now) when one is given."""
    org = Organization(code=code, name=name, kind=kind, parent=parent)
    db.session.add(org)
    pair_organization(org, paired_community, since)
    db.session.flush()
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    return org


def pair_organization(org: Organization, community: Region | None, when: datetime | None = None) -> None:
    """Pair the organization with ``community`` (None: with no community) from ``when`` (default now): the open
    pairing is closed there and the new one opened, and the organization's board rows follow it. The only writer
    of ``Organization.paired_community_id``: a closed period's 流动红旗 reads the pairing in force at its end
    (``paired_communities_at``), so a pairing is never overwritten. Flushes only; the caller commits."""
    # Not flushed yet: no pairing to close, no board rows to move. Read first: loading an expired community's id
    # below may autoflush the organization.
    is_new = org.id is None
    community_id = community.id if community else None
    if org.paired_community_id == community_id:
        return
    current = None if is_new else _open_pairing_locked(org.id)
    if current is not None and current.community_id == community_id:
        return  # a re-pairing that went first, while we waited for its lock, already made it
    when = when or utcnow()  # after the lock: a re-pairing that waited for another begins after it
    if current is not None:
        _close_pairing(current, when)
    org.paired_community = community
    if community is not None:
        db.session.add(Pairing(organization=org, community=community, valid_from=when))
    if not is_new:
        pairing_changed(org.id)  # flushes the new pairing first


def _close_pairing(pairing: Pairing, when: datetime) -> None:
    """End the open pairing at ``when`` — flushed before the new one is inserted, which the unique index of open
    pairings would otherwise refuse. One that begins at ``when`` or later was never in force: it goes."""
    if pairing.valid_from >= when:
        db.session.delete(pairing)
    else:
        pairing.valid_to = when
    db.session.flush()


def _open_pairing_locked(org_id: int) -> Pairing | None:
    """The open pairing, read fresh once the organization's row is locked: two re-pairings of one organization at
    once (a 报到 confirmed while a roster file runs) take turns, the second closing the first's pairing instead of
    meeting the unique index of open pairings. NO KEY: rows referring to the organization are not held up."""
    db.session.execute(sa.select(Organization.id).where(Organization.id == org_id)
                       .with_for_update(key_share=True))
    return db.session.scalar(sa.select(Pairing).where(Pairing.organization_id == org_id, Pairing.valid_to.is_(None))
                             .execution_options(populate_existing=True))


def paired_communities_at(at: datetime) -> dict[int, int]:
    """organization id → the community it was paired with at ``at``: the pairing covering it (``valid_from < at
    <= valid_to``, or still open — the rule of members' affiliations, ``lifecycle.membership``), so a re-pairing
    at or after a period's end leaves the period where it was. Unpaired organizations are absent."""
    return dict(db.session.execute(sa.select(Pairing.organization_id, Pairing.community_id).where(
        Pairing.valid_from < at, sa.or_(Pairing.valid_to.is_(None), Pairing.valid_to >= at))).all())


class Unread(enum.Enum):
    """A value the caller has not read (a sentinel: None is a value read)."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD


def enroll_member(name: str, phone_hash: str, phone_masked: str, branch: Organization, community: Region,
                  grid: Region | None = None, since: datetime | None = None) -> Member:
    member = Member(name=name, phone_hash=phone_hash, phone_masked=phone_masked, branch=branch,
                    community=community, grid=grid)
    db.session.add(member)
    db.session.flush()
    db.session.add(Affiliation(member=member, branch=branch, community=community, grid=grid,
                               valid_from=since or utcnow()))
    count_member(branch.id, 1)  # the per-capita denominator of his branch and department
    return member


def transfer_member(member: Member, branch: Organization, community: Region, grid: Region | None,
                    when: datetime | None = None, current: Affiliation | None | Unread = UNREAD) -> None:
    """Close the current affiliation and open a new one: history keeps where points were earned. ``current``:
    the current affiliation (or None) when the caller has read it already (a dated transfer checks its date)."""
    if (member.branch_id, member.community_id, member.grid_id) == (branch.id, community.id, grid and grid.id):
        return
    when = when or utcnow()
    if current is UNREAD:
        current = current_affiliation(member)
    if current is not None:
        current.valid_to = when
    transfer_on_boards(member.id, member.branch_id, branch.id, community.id, grid and grid.id, when)
    member.branch, member.community, member.grid = branch, community, grid
    db.session.add(Affiliation(member=member, branch=branch, community=community, grid=grid, valid_from=when))


def current_affiliation(member: Member) -> Affiliation | None:
    return db.session.scalar(sa.select(Affiliation).where(
        Affiliation.member_id == member.id, Affiliation.valid_to.is_(None)))


def list_regions(level: RegionLevel | None = None, parent_id: int | None = None) -> sa.Select:
    statement = sa.select(Region).order_by(Region.path)
    if level is not None:
        statement = statement.where(Region.level == level)
    if parent_id is not None:
        statement = statement.where(Region.parent_id == parent_id)
    return statement


def organization_tree() -> list[dict]:
    """All organizations nested under their parents (a few thousand rows: one query)."""
    orgs = db.session.scalars(sa.select(Organization).order_by(Organization.path)).all()
    nodes = {org.id: {"org": org, "children": []} for org in orgs}
    roots = []
    for org in orgs:
        (nodes[org.parent_id]["children"] if org.parent_id in nodes else roots).append(nodes[org.id])
    return roots


def list_members(principal: Principal, *, branch_id: int | None = None, community_id: int | None = None,
                 name: str | None = None) -> sa.Select:
    # The page in one statement: each member's branch, community and grid joined, and whether his WeChat is bound
    # (an EXISTS per row through unique indexes), rather than a query per member or per node.
    statement = sa.select(Member).options(
        undefer(Member.wechat_bound),
        *(joinedload(relation) for relation in (Member.branch, Member.community, Member.grid)),
    ).where(member_scope(principal)).order_by(Member.id)
    if branch_id is not None:
        statement = statement.where(Member.branch_id == branch_id)
    if community_id is not None:
        statement = statement.where(Member.community_id == community_id)
    if name:
        statement = statement.where(Member.name.contains(name))
    return statement


def find_community(community_id: int, field: str = "community_id") -> Region:
    """A community-level region named in a request body (a wrong id is the body's fault: 422)."""
    community = db.session.get(Region, community_id)
    if community is None:
        raise ValidationFailed({field: ["社区不存在"]})
    if community.level != RegionLevel.COMMUNITY:
        raise ValidationFailed({field: [f"请选择社区（所选为{REGION_LEVEL_NAMES[community.level]}）"]})
    return community


def find_organization(org_id: int) -> Organization:
    """An organization named in the URL (unknown: 404)."""
    org = db.session.get(Organization, org_id)
    if org is None:
        raise NotFound("组织不存在")
    return org


def get_member(principal: Principal, member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None:
        raise NotFound("党员不存在")
    authorize_or_hide(principal, "member.view", member, NotFound("党员不存在"))
    return member


def get_organization(principal: Principal, org_id: int) -> Organization:
    org = find_organization(org_id)
    authorize_or_hide(principal, "organization.view", org, NotFound("组织不存在"))
    return org
