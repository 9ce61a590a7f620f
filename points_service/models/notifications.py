"""Notifications: members' subscribe-message grants, the in-app inbox, and the WeChat delivery outbox.

Invariants enforced by the database:
- one inbox message per (event source, member): a retried event or job run enqueues once
  (UNIQUE source_key, member_id);
- one WeChat delivery per message, so per (event source, member, template) (UNIQUE message_id);
- a member's unused grants never go negative (CHECK available >= 0), one grant row per (member, template);
- one pause per channel (UNIQUE channel).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points_service.db import UTCDateTime, db, enum_column, utcnow


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed and recorded before the HTTP call; past its lease it is re-sent once
    SENT = "sent"  # WeChat accepted it (terminal)
    FAILED = "failed"  # transient errors until max attempts (terminal)
    PERMANENT_FAILED = "permanent_failed"  # WeChat refused it for good: no consent, bad openid (terminal)


DELIVERY_STATE_NAMES = {
    DeliveryState.PENDING: "待发送",
    DeliveryState.SENDING: "发送中",
    DeliveryState.SENT: "已发送",
    DeliveryState.FAILED: "发送失败",
    DeliveryState.PERMANENT_FAILED: "无法送达",
}


class SubscriptionGrant(db.Model):
    """What a member accepted in wx.requestSubscribeMessage: each acceptance is one send (WeChat's rule)."""

    __tablename__ = "notification_grants"
    __table_args__ = (
        sa.UniqueConstraint("member_id", "template_key", name="uq_notification_grants_member_template"),
        sa.CheckConstraint("available >= 0", name="available_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    template_key: Mapped[str] = mapped_column(sa.String(40))
    available: Mapped[int] = mapped_column(default=0)  # unused grants
    granted_total: Mapped[int] = mapped_column(default=0)  # every acceptance ever recorded
    last_granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboxMessage(db.Model):
    """One per member event, always: the in-app inbox never depends on WeChat."""

    __tablename__ = "notification_messages"
    __table_args__ = (
        sa.UniqueConstraint("source_key", "member_id", name="uq_notification_messages_source_member"),
        sa.Index("ix_notification_messages_member_created", "member_id", "id"),
        sa.Index("ix_notification_messages_member_unread", "member_id", "read_at"),  # GET /me's unread count
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    event: Mapped[str] = mapped_column(sa.String(40))
    source_key: Mapped[str] = mapped_column(sa.String(80))  # e.g. record:12:approved, expiry:2026-11
    title: Mapped[str] = mapped_column(sa.String(60))
    body: Mapped[str] = mapped_column(sa.String(500))
    link: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(db.Model):
    """The outbox: a WeChat subscribe message to send, written with the event, sent by the delivery job."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.Index("ix_notification_deliveries_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("notification_messages.id"), unique=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    template_key: Mapped[str] = mapped_column(sa.String(40))
    data: Mapped[dict] = mapped_column(sa.JSON)  # WeChat's {"thing1": {"value": ...}}, cut to its limits
    page: Mapped[str] = mapped_column(sa.String(200), default="")
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState, "state"), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # while sending
    duplicate_possible: Mapped[bool] = mapped_column(default=False)  # re-sent after a crash mid-send
    last_errcode: Mapped[int | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Indexed for the retention job, whose batches find the deliveries that ended long ago by this time rather than
    # walking the rest of the table by id (not partial: nearly every delivery has ended).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    message: Mapped[InboxMessage] = relationship()


class DeliveryPause(db.Model):
    """A channel's sends held back until an instant: WeChat's daily quota (45009) used up, until just after the
    quota day ends in Shanghai. In the database, not in a process: every deliverer, and one restarted, keeps to
    it."""

    __tablename__ = "notification_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(40), unique=True)  # e.g. wechat_subscribe
    paused_until: Mapped[datetime] = mapped_column(UTCDateTime)
    errcode: Mapped[int | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
