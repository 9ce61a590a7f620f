"""The day after an activity: the no-show and no-check-out deductions (job ``activity_consequences``).

For each published activity that ended in the settled day (Asia/Shanghai):
- a member signed up (not withdrawn) without any check-in gets the policy's ``no_show`` deduction;
- a check-in never checked out (checked in, or still in review) becomes ``no_checkout`` and gets the
  policy's ``no_checkout`` deduction.
A member deactivated since gets neither deduction (the ledger takes nothing for him any more), and the others
still get theirs: his check-in is closed all the same.

Runs inside the job runner's transaction (flushes only). Exactly once by the job's (job, day) claim,
and again by each deduction's unique key (``noshow:{activity}:{member}``, ``nocheckout:{activity}:{member}``)
and the compare-and-set on the check-in's status, so running a day twice writes nothing new.
Activities that ended in the few days before are looked at again, so that a scheduler that was down
for a while (catch-up runs only the latest day) still settles them; the keys make that harmless. Each
activity's deductions are priced under the policy in force when it ended, not the settled day's: the key
holds the item code, so a later version pointing ``no_show`` at another item would otherwise write a second
deduction for a no-show the first run already took.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.checkin.scans import deduct
from points_service.domain.ledger.credit import MemberInactive
from points_service.domain.periods import Period
from points_service.domain.policy import Policy, policy_in_force
from points_service.models import Activity, ActivityStatus, Checkin, CheckinStatus, Signup, SignupStatus, SourceType

CATCH_UP = timedelta(days=7)
OPEN_CHECKIN_STATUSES = (CheckinStatus.CHECKED_IN, CheckinStatus.REVIEW)


def settle_activity_consequences(period: Period, _policy: Policy) -> dict:
    activities = db.session.scalars(sa.select(Activity).where(
        Activity.status == ActivityStatus.PUBLISHED,
        Activity.ends_at >= period.start - CATCH_UP, Activity.ends_at < period.end,
    ).order_by(Activity.id)).all()
    no_shows = no_checkouts = 0
    for activity in activities:
        policy = policy_in_force(activity.ends_at)
        no_shows += _deduct_no_shows(activity, policy)
        no_checkouts += _close_open_checkins(activity, policy)
    return {"activities": len(activities), "no_shows": no_shows, "no_checkouts": no_checkouts}


def _deduct_no_shows(activity: Activity, policy: Policy) -> int:
    checked_in = sa.select(Checkin.member_id).where(Checkin.activity_id == activity.id)
    members = db.session.scalars(sa.select(Signup.member_id).where(
        Signup.activity_id == activity.id, Signup.status == SignupStatus.SIGNED_UP,
        Signup.member_id.not_in(checked_in),
    ).order_by(Signup.member_id)).all()
    return sum(_deduct_if_active(member_id, "no_show", f"noshow:{activity.id}:{member_id}", activity, policy)
               for member_id in members)


def _close_open_checkins(activity: Activity, policy: Policy) -> int:
    # Flip first, then deduct for exactly the rows this run flipped (RETURNING: no second reader wins).
    closed = db.session.scalars(sa.update(Checkin).where(
        Checkin.activity_id == activity.id, Checkin.checked_out_at.is_(None),
        Checkin.status.in_(OPEN_CHECKIN_STATUSES),
    ).values(status=CheckinStatus.NO_CHECKOUT).returning(Checkin.member_id)
     .execution_options(synchronize_session=False)).all()
    return sum(_deduct_if_active(member_id, "no_checkout", f"nocheckout:{activity.id}:{member_id}", activity,
                                 policy) for member_id in sorted(closed))


def _deduct_if_active(member_id: int, event: str, key: str, activity: Activity, policy: Policy) -> bool:
    """The deduction, unless the member has been deactivated: ``credit`` refuses him before it writes anything,
    and one such member must not fail the whole day's run (it would fail again every day of the catch-up)."""
    try:
        deduct(member_id, event, SourceType.JOB, key, occurred_at=activity.ends_at, policy=policy)
    except MemberInactive:
        return False
    return True
