"""The delivery job: claim a due outbox row, record the attempt, send it, mark the outcome — one row at a time.

Crash safety: a row is marked ``sending`` (attempt counted, lease set) and COMMITTED before the HTTP call.
A process killed between the send and the mark leaves it ``sending``; once the lease has passed, the next
run re-sends it ONCE with ``duplicate_possible`` set (the member may get the message twice; it is recorded).
A row found ``sending`` past its lease a second time is not sent again but failed, so a crash loop sends at
most one duplicate. Rows are claimed with FOR UPDATE SKIP LOCKED: two delivery processes never share a row.

WeChat's daily API quota (45009) is not a transient failure: every send fails the same way until the quota resets
at midnight (Asia/Shanghai). The row is deferred to just after that midnight without spending one of its tries,
and a row the quota would defer beyond ``quota_days`` after its enqueueing fails instead. The channel is paused
until then (``DeliveryPause``, in the row's transaction): this run and every later one, in any process, send
nothing more until the next quota day; the other rows stay pending as they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from points_service.db import db, upsert, utcnow
from points_service.domain.notifications.config import notification_config
from points_service.domain.periods import LOCAL_TZ
from points_service.integrations.wechat import QUOTA_ERRCODE, SendFailed, subscribe_sender
from points_service.models import Delivery, DeliveryPause, DeliveryState, SubscriptionGrant, User, WechatIdentity

log = logging.getLogger(__name__)

NO_CONSENT = 43101
QUOTA_RESUME_AFTER = timedelta(minutes=5)  # after midnight in Shanghai, when WeChat's quota day starts again
CHANNEL = "wechat_subscribe"  # the pause's key: the mini-program's one quota


@dataclass(frozen=True)
class Claimed:
    id: int
    openid: str
    template_id: str
    data: dict
    page: str
    attempts: int


def backoff(attempts: int, settings: dict) -> timedelta:
    """Exponential: base × 2^(attempts-1), capped."""
    seconds = settings["backoff_seconds"] * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings["backoff_cap_seconds"]))


def after_quota_reset(at: datetime) -> datetime:
    """Just after the next midnight in Asia/Shanghai (WeChat's quota day), as an aware UTC instant."""
    next_day = at.astimezone(LOCAL_TZ).date() + timedelta(days=1)
    midnight = datetime.combine(next_day, datetime.min.time(), tzinfo=LOCAL_TZ)
    return (midnight + QUOTA_RESUME_AFTER).astimezone(at.tzinfo or LOCAL_TZ)


def deliver_due(*, now=None, sender=None, limit: int | None = None) -> dict:
    """Send what is due, each row in its own transactions. Returns counts by outcome."""
    settings = notification_config().delivery
    sender = sender or subscribe_sender(current_app.config)
    counts = {"sent": 0, "retry": 0, "deferred": 0, "failed": 0, "permanent_failed": 0}
    for _ in range(limit or settings["batch"]):
        at = now or utcnow()
        claimed = claim_next(at, settings)
        if claimed is None:
            break
        if isinstance(claimed, str):
            counts[claimed] += 1
            continue
        outcome = _attempt(sender, claimed)
        counts[mark(claimed, outcome, now or utcnow(), settings)] += 1
        if outcome is not None and outcome.errcode == QUOTA_ERRCODE:
            log.warning("WeChat's daily quota is used up (45009): nothing is sent until %s",
                        after_quota_reset(at).isoformat())
            break  # every further send would fail the same way until midnight; the rest stay pending
    return counts


def _attempt(sender, claimed: Claimed) -> SendFailed | None:
    try:
        sender.send(claimed.openid, claimed.template_id, claimed.data, claimed.page)
    except SendFailed as failure:
        return failure
    return None


def claim_next(at: datetime, settings: dict) -> Claimed | str | None:
    """Claim one due row and commit the attempt; a str names a row settled without sending. None while the
    channel is paused (the quota used up): nothing is due until the next quota day."""
    if paused_until(at) is not None:
        db.session.rollback()
        return None
    row = db.session.scalar(
        sa.select(Delivery).where(sa.or_(
            sa.and_(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= at),
            sa.and_(Delivery.state == DeliveryState.SENDING, Delivery.lease_until <= at)))
        .order_by(Delivery.next_attempt_at, Delivery.id).limit(1).with_for_update(skip_locked=True))
    if row is None:
        db.session.rollback()
        return None
    settled = _interrupted(row, at) if row.state == DeliveryState.SENDING else None
    settled = settled or _unaddressable(row, at)
    if settled:
        db.session.commit()
        return settled
    row.state, row.attempts, row.lease_until = DeliveryState.SENDING, row.attempts + 1, at + timedelta(
        seconds=settings["lease_seconds"])
    row.updated_at = at
    claimed = Claimed(row.id, _openid(row.member_id), _template_id(row), row.data, row.page, row.attempts)
    db.session.commit()
    return claimed


def _interrupted(row: Delivery, at: datetime) -> str | None:
    """A row left ``sending``: its send may have reached WeChat. Re-send once, flagged; never twice."""
    if row.duplicate_possible:
        _settle(row, DeliveryState.FAILED, at, None, "发送中断两次，为避免重复不再发送")
        return "failed"
    row.duplicate_possible = True
    log.warning("delivery %s was interrupted mid-send; re-sending once (duplicate possible)", row.id)
    return None


def _unaddressable(row: Delivery, at: datetime) -> str | None:
    problem = "党员未绑定微信" if not _openid(row.member_id) else "模板未配置" if not _template_id(row) else None
    if problem is None:
        return None
    _settle(row, DeliveryState.PERMANENT_FAILED, at, None, problem)
    _give_back_grant(row)
    return "permanent_failed"


def _openid(member_id: int) -> str | None:
    return db.session.scalar(sa.select(WechatIdentity.openid).join(User, User.id == WechatIdentity.user_id)
                             .where(User.member_id == member_id).limit(1))


def _template_id(row: Delivery) -> str | None:
    template = notification_config().templates.get(row.template_key)
    return template.template_id if template else None


def _settle(row: Delivery, state: DeliveryState, at: datetime, errcode: int | None, error: str) -> None:
    row.state, row.lease_until, row.updated_at = state, None, at
    row.last_errcode, row.last_error = errcode, error[:300]
    if state == DeliveryState.SENT:
        row.sent_at = at


def mark(claimed: Claimed, failure: SendFailed | None, at: datetime, settings: dict) -> str:
    """Record the outcome of one attempt and commit; returns the counter it adds to."""
    row = db.session.get(Delivery, claimed.id, with_for_update=True)
    if row is None or row.state != DeliveryState.SENDING or row.attempts != claimed.attempts:
        db.session.rollback()
        return "retry"  # re-claimed after our lease ran out: the other claimer records it
    if failure is None:
        _settle(row, DeliveryState.SENT, at, None, "")
        outcome = "sent"
    elif failure.permanent:
        _settle(row, DeliveryState.PERMANENT_FAILED, at, failure.errcode, failure.errmsg)
        if failure.errcode == NO_CONSENT:
            _forget_grants(row)
        else:
            _give_back_grant(row)
        outcome = "permanent_failed"
    elif failure.errcode == QUOTA_ERRCODE:
        outcome = _defer_for_quota(row, failure, at, settings)
    elif row.attempts >= settings["max_attempts"]:
        _settle(row, DeliveryState.FAILED, at, failure.errcode, failure.errmsg)
        _give_back_grant(row)
        outcome = "failed"
    else:
        _settle(row, DeliveryState.PENDING, at, failure.errcode, failure.errmsg)
        row.next_attempt_at = at + backoff(row.attempts, settings)
        outcome = "retry"
    db.session.commit()
    return outcome


def paused_until(at: datetime) -> datetime | None:
    """When WeChat sends resume, if they are paused at ``at`` (the daily quota used up)."""
    until = db.session.scalar(sa.select(DeliveryPause.paused_until).where(DeliveryPause.channel == CHANNEL))
    return until if until is not None and until > at else None


def _pause(until: datetime, failure: SendFailed, at: datetime) -> None:
    """Hold every WeChat send back until ``until``, as one upsert: two deliverers meeting the quota at once both
    write it."""
    upsert(DeliveryPause, [{"channel": CHANNEL, "paused_until": until, "errcode": failure.errcode,
                            "reason": failure.errmsg[:300], "updated_at": at}], ("channel",), _latest_pause)


def _latest_pause(excluded) -> dict:
    return {"paused_until": excluded.paused_until, "errcode": excluded.errcode, "reason": excluded.reason,
            "updated_at": excluded.updated_at}


def _defer_for_quota(row: Delivery, failure: SendFailed, at: datetime, settings: dict) -> str:
    """WeChat's daily quota is used up: not one of the transient tries (the claim's count is taken back); the
    row waits for the quota day to start again, unless that is beyond ``quota_days`` after its enqueueing, and
    so does every other send (the pause)."""
    row.attempts -= 1
    resume = after_quota_reset(at)
    _pause(resume, failure, at)
    if resume > row.created_at + timedelta(days=settings["quota_days"]):
        _settle(row, DeliveryState.FAILED, at, failure.errcode, f"微信接口每日调用次数已用完，"
                f"{settings['quota_days']} 天内未能发送：{failure.errmsg}")
        _give_back_grant(row)
        return "failed"
    _settle(row, DeliveryState.PENDING, at, failure.errcode, failure.errmsg)
    row.next_attempt_at = resume
    return "deferred"


def _forget_grants(row: Delivery) -> None:
    """WeChat says the member holds no grant for this template: ours are stale, so none is left."""
    db.session.execute(sa.update(SubscriptionGrant).where(
        SubscriptionGrant.member_id == row.member_id, SubscriptionGrant.template_key == row.template_key)
        .values(available=0).execution_options(synchronize_session=False))


def _give_back_grant(row: Delivery) -> None:
    """WeChat spends a grant only on a message it accepts: a delivery that ends unsent returns the grant its
    enqueueing took, so the member's next event can still reach him. Not after an interrupted send, which may
    have been accepted (a grant counted once too often is corrected by WeChat's 43101 on the next send)."""
    if row.duplicate_possible:
        return
    grants = SubscriptionGrant.__table__
    db.session.execute(grants.update().where(grants.c.member_id == row.member_id,
                                             grants.c.template_key == row.template_key)
                       .values(available=grants.c.available + 1))


def deliver_job(_period=None, _policy=None) -> dict:
    """The scheduled delivery (every minute)."""
    return deliver_due()
