"""Cancelling an activity (取消活动): its host community calls a published activity off.

    published ──cancel──> cancelled   (terminal: an approval event, an ``activity.cancel`` audit row)

Who: those who may edit it (``signups.may_edit``): the host community's admins, or an admin; the proposing
organization's managers get 403 ``activity_host_only`` as for an edit. When: before it ends and while nobody has
checked in (once someone has, his hours and points are at stake), else 409 ``activity_not_cancellable``. The
activity's row is locked FOR UPDATE before the check-ins are counted; a check-in's INSERT reads it FOR SHARE and
writes only while it is published, so a check-in racing the cancel is counted (refused) or waits for it and is
answered 409 ``activity_cancelled`` having written nothing. A
proposal still waiting is not cancelled: its approvers reject it. The transition is a compare-and-set, so of two
cancellations one wins (the other: 409 ``invalid_transition``).

Every member signed up is told in his inbox (``notifications.activity_cancelled``, once per member). A cancelled
activity stays listed with its status; sign-ups, check-ins and its code answer 409 ``activity_cancelled``; its
reminders are not sent and the day-after deductions skip it (both read published activities only).
"""

from __future__ import annotations

from datetime import datetime

from points_service.db import db, utcnow
from points_service.domain import notifications
from points_service.domain.access import Principal, authorize
from points_service.domain.activities.signups import (
    PublishedActivityHostOnly,
    get_activity,
    has_checkins,
    lock_activity,
    may_edit,
)
from points_service.domain.approvals.decisions import Stage, can_transition, move_activity, stage_of
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict
from points_service.models import Activity


class ActivityNotCancellable(Conflict):
    code, message = "activity_not_cancellable", "活动不能取消"


def cancel_refusal(activity: Activity, now: datetime) -> str | None:
    """Why this activity cannot be cancelled now (None if it can), whoever asks."""
    if not can_transition(stage_of(activity), Stage.CANCELLED):
        return "只有已发布的活动可以取消（待审批的活动请在审批中驳回；已取消或未通过的不能再取消）"
    if activity.ends_at <= now:
        return "活动已结束，不能取消"
    if has_checkins(activity.id):
        return "已有党员签到，活动不能取消"
    return None


def can_cancel(actor: Principal, activity: Activity, now: datetime | None = None) -> bool:
    """Whether this actor may cancel this activity now (for the console's button)."""
    return may_edit(actor, activity) and cancel_refusal(activity, now or utcnow()) is None


def cancel_activity(actor: Principal, activity_id: int, reason: str, *, now: datetime | None = None) -> Activity:
    """Cancel a published activity with a reason; its signed-up members are told. One commit."""
    now = now or utcnow()
    activity = get_activity(actor, activity_id)  # 404 unless he may see it, then 403 unless he manages it
    authorize(actor, "activity.manage", activity)
    # Before counting check-ins: one racing the cancel waits for it, then writes nothing. What was read is kept: of
    # two cancellations, the one that waited loses the compare-and-set (409 invalid_transition).
    lock_activity(activity, reread=False)
    refusal = cancel_refusal(activity, now)
    if refusal:
        raise ActivityNotCancellable(refusal)
    if not may_edit(actor, activity):
        raise PublishedActivityHostOnly("活动已发布，只有承办社区的管理员可以取消")
    move_activity(activity, Stage.CANCELLED, actor, comment=reason, now=now)
    audit("activity.cancel", actor=actor, target=activity, detail={"reason": reason})
    notifications.activity_cancelled(activity, reason)
    db.session.commit()
    return activity
