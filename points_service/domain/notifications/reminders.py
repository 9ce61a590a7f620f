"""The reminder jobs: activities about to start, redeemable points about to expire.

Each runs often and notifies each member once per source key (``activity:<id>:reminder:<start>`` per
member×activity×start, ``expiry:<month>`` per member×month): the inbox's unique key makes a second run a no-op.
Each member's message commits on its own, so one failure never undoes the others.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.ledger.settlement import expiring_by_subject
from points_service.domain.notifications.config import notification_config
from points_service.domain.notifications.outbox import notify
from points_service.domain.periods import LOCAL_TZ, PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.models import Activity, ActivityStatus, Member, Signup, SignupStatus, SubjectType


def remind_activities(*, now: datetime | None = None) -> dict:
    """Signed-up members of published activities starting within the configured hours."""
    now = now or utcnow()
    horizon = now + timedelta(hours=notification_config().reminders["activity_hours"])
    rows = db.session.execute(
        sa.select(Signup.member_id, Activity.id, Activity.title, Activity.starts_at)
        .join(Activity, Activity.id == Signup.activity_id)
        .where(Signup.status == SignupStatus.SIGNED_UP, Activity.status == ActivityStatus.PUBLISHED,
               Activity.starts_at > now, Activity.starts_at <= horizon)
        .order_by(Activity.id, Signup.member_id)).all()
    sent = 0
    for member_id, activity_id, title, starts_at in rows:
        message = notify(member_id, "activity_reminder", reminder_key(activity_id, starts_at), {
            "activity_id": activity_id, "activity_title": title, "starts_at": starts_at,
            "tip": "请按时到场扫码签到"})
        db.session.commit()
        sent += message is not None
    return {"reminded": sent}


def reminder_key(activity_id: int, starts_at: datetime) -> str:
    """One reminder per member, activity and start (``activity:3:reminder:20261111T010000Z``): an activity moved
    to another start is reminded of again, once, and one moved back to a start he was reminded of is not."""
    return f"activity:{activity_id}:reminder:{starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def remind_expiring(*, now: datetime | None = None) -> dict:
    """Members whose redeemable points expire at this month's end, once the end is within the configured days."""
    now = now or utcnow()
    month = period_containing(now, PeriodKind.MONTH)
    months = policy_in_force(now).redeemable_expiry.validity_months
    if months is None or month.end - now > timedelta(days=notification_config().reminders["expiry_days"]):
        return {"reminded": 0}
    active = set(db.session.scalars(sa.select(Member.id).where(Member.is_active.is_(True))))
    sent = 0
    last_day = (month.end - timedelta(seconds=1)).astimezone(LOCAL_TZ).date()
    for (subject_type, member_id), points in sorted(expiring_by_subject(month, months).items()):
        if subject_type != SubjectType.MEMBER or member_id not in active:
            continue
        message = notify(member_id, "points_expiring", f"expiry:{month.key}", {
            "points": points, "expires_on": last_day, "tip": "可到积分超市兑换"})
        db.session.commit()
        sent += message is not None
    return {"reminded": sent}


def activity_reminder_job(_period=None, _policy=None) -> dict:
    return remind_activities()


def expiry_reminder_job(_period=None, _policy=None) -> dict:
    return remind_expiring()
