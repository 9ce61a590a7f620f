"""Unbinding a member's WeChat identity (``domain.accounts.unbinding``): those who manage his status, audited
with the reason; the identity is detached and every session of his account ends in the same commit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.accounts.tokens import TokenReused, issue_tokens, refresh_tokens
from points_service.domain.accounts.unbinding import NotBound, unbind_wechat
from points_service.domain.errors import Forbidden, NotFound, ValidationFailed
from points_service.models import AuditEntry, Member, RefreshToken, Role, User, WechatIdentity
from tests.factories import make_user, make_wechat_identity, make_world


def wechat_bound(member_id: int) -> bool:
    """``Member.wechat_bound`` read afresh from the database."""
    return bool(db.session.scalar(sa.select(Member.wechat_bound).where(Member.id == member_id)))


@pytest.fixture
def world(app):
    world = make_world()
    world["identity"] = make_wechat_identity("oAliceOld0001", world["users"]["alice"])
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="fin_org_admin")
    db.session.commit()
    return world


def as_(world, who):
    return principal_for(world["users"][who])


@pytest.mark.parametrize("who", ["admin", "hr", "org_admin"])
def test_those_who_manage_his_status_unbind_and_every_session_ends(world, who):
    alice, user = world["alice"], world["users"]["alice"]
    pair = issue_tokens(f"u:{user.id}")
    db.session.commit()
    version = user.token_version
    assert wechat_bound(alice.id)
    unbind_wechat(as_(world, who), alice.id, "  换了微信号  ")
    db.session.refresh(world["identity"])
    db.session.refresh(user)
    assert world["identity"].user_id is None and not wechat_bound(alice.id)
    assert user.token_version == version + 1
    assert db.session.scalar(sa.select(RefreshToken.revoked_at).where(
        RefreshToken.subject == f"u:{user.id}")) is not None
    with pytest.raises(TokenReused):
        refresh_tokens(decode_token(pair.refresh_token))
    row = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "wechat.unbind"))
    assert (row.actor_id, row.target_type, row.target_id) == (world["users"][who].id, "members", str(alice.id))
    assert row.detail == {"reason": "换了微信号", "user_id": user.id, "wechat_identity_id": world["identity"].id}


def test_a_member_without_a_bound_identity_is_409_and_nothing_changes(world):
    bob = world["users"]["bob"]
    with pytest.raises(NotBound) as refused:
        unbind_wechat(as_(world, "admin"), world["bob"].id, "核对")
    assert refused.value.code == "wechat_not_bound" and refused.value.status == 409
    unbind_wechat(as_(world, "admin"), world["alice"].id, "换号")
    with pytest.raises(NotBound):  # a second unbinding finds nothing bound
        unbind_wechat(as_(world, "admin"), world["alice"].id, "换号")
    db.session.rollback()
    assert db.session.get(User, bob.id).token_version == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "wechat.unbind")) == 1


@pytest.mark.parametrize(("who", "error"), [
    ("secretary", Forbidden),  # sees alice, does not manage her status
    ("community_admin", Forbidden),
    ("bob", NotFound),  # another member: alice is hidden from him
    ("alice", Forbidden),  # nobody unbinds himself this way
])
def test_others_are_refused_and_an_unseen_member_is_not_found(world, who, error):
    with pytest.raises(error):
        unbind_wechat(as_(world, who), world["alice"].id, "换号")
    db.session.rollback()
    assert db.session.get(WechatIdentity, world["identity"].id).user_id == world["users"]["alice"].id


def test_hr_of_another_department_gets_not_found_like_a_missing_member(world):
    with pytest.raises(NotFound) as outside:
        unbind_wechat(as_(world, "hr"), world["carol"].id, "换号")
    with pytest.raises(NotFound) as missing:
        unbind_wechat(as_(world, "hr"), 2_000_000_000, "换号")
    assert (outside.value.code, outside.value.message) == (missing.value.code, missing.value.message)


def test_a_reason_is_required(world):
    with pytest.raises(ValidationFailed):
        unbind_wechat(as_(world, "admin"), world["alice"].id, "   ")
    db.session.rollback()
    assert wechat_bound(world["alice"].id)
