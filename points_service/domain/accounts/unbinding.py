"""Unbinding a member's WeChat identity (解绑微信): the way back from a binding that is wrong or stale — the member
changed WeChat account, or someone bound his roster row first by guessing his name and phone.

Who may: those who manage the member's status (``member.manage_status``: admins, HR and org admins over his
branch), the people who already decide whether his account may sign in at all. A member they may not see is
404 like a missing one.

In one commit the identity (its openid) is detached from his account, every session of that account ends
(refresh tokens revoked, token version moved on: access tokens and refreshes from before are refused) and an audit
row keeps the reason. The identity row stays: its openid signs in next time unbound and may bind again, and the
member binds from whichever WeChat he now uses."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import Principal, authorize, authorize_or_hide
from points_service.domain.accounts.tokens import end_sessions
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.models import Member, User, WechatIdentity


class NotBound(Conflict):
    code, message = "wechat_not_bound", "该党员未绑定微信，无需解绑"


def unbind_wechat(actor: Principal, member_id: int, reason: str, *, detail: dict | None = None) -> Member:
    """Detach the member's WeChat identity from his account and end the account's sessions (audited with the
    reason and ``detail``, e.g. the command line's ``via``). 404 outside the actor's sight, 403 without the right
    to manage him, 409 ``wechat_not_bound``."""
    member = db.session.get(Member, member_id)
    if member is None:
        raise NotFound("党员不存在")
    authorize_or_hide(actor, "member.view", member, NotFound("党员不存在"))  # unseen: like a missing one
    authorize(actor, "member.manage_status", member)
    reason = (reason or "").strip()[:200]
    if not reason:
        raise ValidationFailed({"reason": ["请填写解绑原因"]})
    user_id = db.session.scalar(sa.select(User.id).where(User.member_id == member.id))
    # The identity's row first, as a bind holds it; then the account's, as disable_account locks it before
    # end_sessions: a refresh in flight (sharing that lock) commits first and its tokens are revoked here too.
    identity = None if user_id is None else db.session.scalar(
        sa.select(WechatIdentity).where(WechatIdentity.user_id == user_id).with_for_update()
        .execution_options(populate_existing=True))
    if identity is None:
        raise NotBound()
    db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    identity.user_id = None
    db.session.flush()
    end_sessions(user_id)
    audit("wechat.unbind", actor=actor, target=member,
          detail={"reason": reason, "user_id": user_id, "wechat_identity_id": identity.id, **(detail or {})})
    db.session.commit()
    return member

