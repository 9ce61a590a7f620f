"""Transferring a member to another branch and/or residence community (and grid), dated.

The transfer closes his current affiliation at the local midnight of its effective date and opens the new one
(``structure.transfer_member``); the boards of periods ending after that instant take the new scopes with his
whole score in them, earlier boards keep the old ones, and the head counts of both branches follow. A date after
today is stored as a scheduled change (``scheduled``) and applied by the ``member_changes`` job on that date.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import Principal, allowed, authorize
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, ValidationFailed
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled, has_waiting_change, schedule
from points_service.domain.lifecycle.status import effective_in, local_today, managed_member
from points_service.domain.structure import find_community, transfer_member
from points_service.models import (
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    ScheduledChangeKind,
    ScheduledMemberChange,
)


class InactiveMember(Conflict):
    code, message = "member_inactive", "该党员已停用，不能转接；请先恢复"


class NothingToTransfer(Conflict):
    code, message = "nothing_to_transfer", "转入的支部、社区和网格与当前相同"


def _branch(branch_id: int | None, member: Member) -> Organization:
    if branch_id is None:
        return member.branch
    branch = db.session.get(Organization, branch_id)
    if branch is None or branch.kind != OrgKind.BRANCH:
        raise ValidationFailed({"branch_id": ["党支部不存在"]})
    return branch


def _grid(grid_id: int | None, community: Region) -> Region | None:
    if grid_id is None:
        return None
    grid = db.session.get(Region, grid_id)
    if grid is None or grid.level != RegionLevel.GRID or grid.parent_id != community.id:
        raise ValidationFailed({"grid_id": ["网格不存在或不属于所选社区"]})
    return grid


def transfer(actor: Principal, member_id: int, *, branch_id: int | None = None, community_id: int | None = None,
             grid_id: int | None = None, effective_on: date | None = None, reason: str = "",
             now: datetime | None = None) -> Member | ScheduledMemberChange:
    """Transfer now (or backdated): the member; dated after today: the scheduled change, applied on that date."""
    now = now or utcnow()
    member = managed_member(actor, member_id)
    if not member.is_active:
        raise InactiveMember()
    branch = _branch(branch_id, member)
    authorize(actor, "member.place_in", branch)
    community = member.community if community_id is None else find_community(community_id)
    grid = _grid(grid_id, community) if grid_id is not None or community_id is not None else member.grid
    if (branch.id, community.id, grid and grid.id) == (member.branch_id, member.community_id, member.grid_id):
        raise NothingToTransfer()
    effective_on = effective_on or local_today(now)
    if effective_on > local_today(now):
        result = schedule(actor, member, ScheduledChangeKind.TRANSFER, effective_on, now, reason=reason,
                          branch_id=branch.id, community_id=community.id, grid_id=grid and grid.id)
    elif has_waiting_change(member.id):  # it would apply later over this one (cancel it first)
        raise ChangeAlreadyScheduled()
    else:
        result = apply_transfer(actor, member, branch, community, grid, effective_on, reason, now)
    db.session.commit()
    return result


def apply_transfer(actor: Principal, member: Member, branch: Organization, community: Region, grid: Region | None,
                   effective_on: date, reason: str, now: datetime) -> Member:
    """Move him at the local midnight of ``effective_on``; flushes only (the scheduled-change job calls it too)."""
    before = {"branch_id": member.branch_id, "community_id": member.community_id, "grid_id": member.grid_id}
    at, current = effective_in(member, effective_on, now)
    transfer_member(member, branch, community, grid, when=at, current=current)
    audit("member.transfer", actor=actor, target=member, detail={
        "from": before, "to": {"branch_id": branch.id, "community_id": community.id, "grid_id": grid and grid.id},
        "effective_on": effective_on.isoformat(), "reason": (reason or "").strip()[:200]})
    return member


def transfer_targets(actor: Principal) -> tuple[list[Organization], list[Region]]:
    """The branches ``actor`` may move a member into, and every community (for the console's transfer form)."""
    branches = db.session.scalars(sa.select(Organization).where(Organization.kind == OrgKind.BRANCH)
                                  .order_by(Organization.path)).all()
    communities = db.session.scalars(sa.select(Region).where(Region.level == RegionLevel.COMMUNITY)
                                     .order_by(Region.path)).all()
    return [b for b in branches if allowed(actor, "member.place_in", b)], list(communities)
