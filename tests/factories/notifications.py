"""Factories for notification tests: a member's subscribe grants, his WeChat identity, an enqueued message."""

from __future__ import annotations

from points_service.db import db
from points_service.domain.notifications import notify
from points_service.models import Member, SubscriptionGrant, User
from tests.factories import make_wechat_identity


def make_grant(member: Member, template_key: str = "record_decided", available: int = 1) -> SubscriptionGrant:
    grant = SubscriptionGrant(member_id=member.id, template_key=template_key, available=available,
                              granted_total=available)
    db.session.add(grant)
    db.session.flush()
    return grant


def on_wechat(user: User, openid: str | None = None):
    """The member's account signed in from the mini-program (so deliveries have an openid)."""
    return make_wechat_identity(openid, user)


def enqueue(member: Member, source_key: str = "test:1", event: str = "record_rejected", **values):
    """One member event through ``notify`` (commits), as a use case would write it."""
    defaults = {"record_id": 1, "item_name": "志愿服务", "result": "未通过", "reason": "照片不清晰",
                "decided_at": None}
    message = notify(member.id, event, source_key, {**defaults, **values})
    db.session.commit()
    return message
