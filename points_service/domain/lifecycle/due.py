"""Scheduled member changes: the ``member_changes`` job applying those due, and cancelling or listing them.

The job runs daily just after local midnight and settles the day before: every change effective on or before the
day after it (the day that has just begun) is applied as if it were made then, effective at that date's local
midnight, as the admin who scheduled it. Each change runs in its own savepoint: one that can no longer apply (the
member was deactivated or moved meanwhile) is marked ``failed`` with the reason, and the others still apply.
Applied, cancelled and failed changes are never picked again, so a re-run changes nothing. The organizations' board
rows and head counts are written once, summed over the applied changes, at the end (``bumps_deferred``; a failed
change's are dropped with its savepoint).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import Principal
from points_service.domain.audit import audit
from points_service.domain.boards.maintain import bumps_deferred, savepoint_with_bumps
from points_service.domain.errors import InvalidTransition, NotFound, ServiceError
from points_service.domain.ledger.credit import lock_subjects
from points_service.domain.lifecycle.status import apply_deactivation, local_today, managed_member
from points_service.domain.lifecycle.transfer import InactiveMember, apply_transfer
from points_service.domain.periods import LOCAL_TZ, Period
from points_service.domain.policy import Policy
from points_service.models import (
    Member,
    Organization,
    Region,
    ScheduledChangeKind,
    ScheduledChangeStatus,
    ScheduledMemberChange,
    SubjectType,
)


def scheduled_changes(actor: Principal, member_id: int) -> list[ScheduledMemberChange]:
    member = managed_member(actor, member_id, lock=False)
    return list(db.session.scalars(sa.select(ScheduledMemberChange).where(
        ScheduledMemberChange.member_id == member.id).order_by(ScheduledMemberChange.id)))


def cancel_scheduled(actor: Principal, member_id: int, change_id: int, reason: str = "", *,
                     now: datetime | None = None) -> ScheduledMemberChange:
    member = managed_member(actor, member_id)
    change = db.session.get(ScheduledMemberChange, change_id)
    if change is None or change.member_id != member.id:
        raise NotFound("待生效的变更不存在")
    if change.status != ScheduledChangeStatus.SCHEDULED:
        raise InvalidTransition("该变更已生效、已取消或已失败，不能取消")
    _settle(change, ScheduledChangeStatus.CANCELLED, (reason or "").strip() or "已取消", now or utcnow())
    audit("member.cancel_scheduled", actor=actor, target=member, detail={"scheduled_change_id": change.id,
                                                                        "reason": change.outcome})
    db.session.commit()
    return change


def apply_due_changes(period: Period, policy: Policy | None = None, *, now: datetime | None = None) -> dict:
    """The ``member_changes`` job (inside the runner's transaction)."""
    now = now or utcnow()
    due_by = local_today(period.end.astimezone(LOCAL_TZ))
    due = db.session.scalars(sa.select(ScheduledMemberChange).where(
        ScheduledMemberChange.status == ScheduledChangeStatus.SCHEDULED,
        ScheduledMemberChange.effective_on <= due_by).order_by(ScheduledMemberChange.member_id)).all()
    # Every member first, by id, held to the job's commit: the order a batch approval takes them in, so the two
    # never wait for each other in a cycle; and a member locked only as the job reached him could be ordering from
    # the 积分超市 (himself, then the item) while the job holds that item from an earlier member's cancelled order.
    lock_subjects((SubjectType.MEMBER, change.member_id) for change in due)
    applied = failed = 0
    # The organizations' board rows, histograms and head counts are written once, summed, at the end (as by a
    # roster import): a day of many changes would otherwise update the same rows once per change.
    with bumps_deferred():
        for change in due:
            try:
                with savepoint_with_bumps():
                    _apply(change, now)
            except ServiceError as error:
                _settle(change, ScheduledChangeStatus.FAILED, error.message, now)
                audit("member.scheduled_failed", target_type="members", target_id=change.member_id,
                      result="failed", detail={"scheduled_change_id": change.id, "error": error.message})
                failed += 1
            else:
                _settle(change, ScheduledChangeStatus.APPLIED, "", now)
                applied += 1
    return {"due": len(due), "applied": applied, "failed": failed}


def _apply(change: ScheduledMemberChange, now: datetime) -> None:
    actor = Principal(user_id=change.actor_id)
    member = db.session.scalar(sa.select(Member).where(Member.id == change.member_id).with_for_update())
    if change.kind == ScheduledChangeKind.DEACTIVATE:
        apply_deactivation(actor, member, change.reason_code, change.reason, change.effective_on, now)
        return
    if not member.is_active:
        raise InactiveMember()
    apply_transfer(actor, member, db.session.get(Organization, change.branch_id),
                   db.session.get(Region, change.community_id),
                   None if change.grid_id is None else db.session.get(Region, change.grid_id),
                   change.effective_on, change.reason, now)


def _settle(change: ScheduledMemberChange, status: ScheduledChangeStatus, outcome: str, now: datetime) -> None:
    change.status, change.outcome, change.settled_at = status, outcome[:200], now
    db.session.flush()
