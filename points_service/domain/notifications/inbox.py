"""What a member does with notifications: grant subscribe-message sends, read his inbox, mark messages read."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db, upsert, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.errors import NotFound, ValidationFailed
from points_service.domain.notifications.config import notification_config
from points_service.models import InboxMessage, SubscriptionGrant

MAX_KEYS_PER_GRANT = 20  # wx.requestSubscribeMessage takes at most 3 at a time; leave room, refuse floods


class MessageNotFound(NotFound):
    code, message = "message_not_found", "消息不存在"


def subscriptions(actor: Principal) -> dict:
    """The configured templates the mini-program may request, with the member's unused grants of each."""
    authorize(actor, "notifications.own")
    held = dict(db.session.execute(sa.select(SubscriptionGrant.template_key, SubscriptionGrant.available)
                                   .where(SubscriptionGrant.member_id == actor.member_id)).all())
    return {"templates": [{"key": t.key, "template_id": t.template_id, "title": t.title,
                           "granted": held.get(t.key, 0)} for t in notification_config().templates.values()]}


def grant_subscriptions(actor: Principal, template_keys: list[str], *, at: datetime | None = None) -> dict:
    """Record what the member accepted in wx.requestSubscribeMessage: one more send per accepted key. WeChat
    answers once per template, so a key listed twice is one acceptance."""
    authorize(actor, "notifications.own")
    templates = notification_config().templates
    unknown = sorted({key for key in template_keys if key not in templates})
    if unknown:
        raise ValidationFailed({"template_keys": [f"未知的订阅消息模板：{', '.join(unknown)}"]},
                               "订阅消息模板不存在", code="template_unknown")
    if not template_keys or len(template_keys) > MAX_KEYS_PER_GRANT:
        raise ValidationFailed({"template_keys": [f"应有 1–{MAX_KEYS_PER_GRANT} 个模板"]})
    at, accepted = at or utcnow(), sorted(set(template_keys))
    granted = {key: _add_grant(actor.member_id, key, at) for key in accepted}
    audit("notification.grant", actor=actor, target_type="members", target_id=str(actor.member_id),
          detail={"template_keys": accepted})
    db.session.commit()
    return {"granted": granted}


def _add_grant(member_id: int, key: str, at: datetime) -> int:
    """One more use of the template, as one upsert: two first acceptances of a template arriving together both
    count (a read, then an INSERT, let the second fail on the unique key, a 500)."""
    (written,) = upsert(SubscriptionGrant, [{"member_id": member_id, "template_key": key, "available": 1,
                                             "granted_total": 1, "last_granted_at": at}],
                        ("member_id", "template_key"), _one_more_grant, ("available",))
    return written.available


def _one_more_grant(excluded) -> dict:
    return {"available": SubscriptionGrant.available + excluded.available,
            "granted_total": SubscriptionGrant.granted_total + excluded.granted_total,
            "last_granted_at": excluded.last_granted_at}


def own_messages(actor: Principal, *, unread: bool = False, before: int | None = None) -> sa.Select:
    """His messages, newest first; ``before``: only those older than that message id (keyset paging: reading
    messages or new ones arriving between two loads moves no row across the pages that follow)."""
    authorize(actor, "notifications.own")
    statement = sa.select(InboxMessage).where(InboxMessage.member_id == actor.member_id)
    if unread:
        statement = statement.where(InboxMessage.read_at.is_(None))
    if before is not None:
        statement = statement.where(InboxMessage.id < before)
    return statement.order_by(InboxMessage.id.desc())


def unread_count(member_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(InboxMessage).where(
        InboxMessage.member_id == member_id, InboxMessage.read_at.is_(None)))


def mark_read(actor: Principal, message_id: int, *, at: datetime | None = None) -> InboxMessage:
    """Idempotent: a message read once keeps its first read time. Another member's message is 404."""
    authorize(actor, "notifications.own")
    message = db.session.get(InboxMessage, message_id)
    if message is None or message.member_id != actor.member_id:
        raise MessageNotFound()
    if message.read_at is None:
        db.session.execute(sa.update(InboxMessage).where(InboxMessage.id == message.id,
                                                         InboxMessage.read_at.is_(None))
                           .values(read_at=at or utcnow()).execution_options(synchronize_session=False))
        db.session.commit()
        db.session.refresh(message)
    return message
