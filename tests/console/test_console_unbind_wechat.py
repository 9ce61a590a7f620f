"""解绑微信 on a member's page: those who manage his status see it while his WeChat is bound, give a reason (CSRF as
every form), and his WeChat is unbound; others see no button and are refused."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, WechatIdentity
from tests.console.helpers import csrf_token, post, sign_in, text
from tests.factories import make_wechat_identity


def bound(world) -> WechatIdentity:
    identity = make_wechat_identity("oAliceOld0001", world["users"]["alice"])
    db.session.commit()
    return identity


def test_hr_unbinds_a_members_wechat_with_a_reason(client, world):
    identity, alice = bound(world), world["alice"]
    sign_in(client, "finance_hr")
    page = text(client.get(f"/console/members/{alice.id}"))
    assert 'id="unbind-wechat-form"' in page and "解绑微信" in page
    done = post(client, f"/console/members/{alice.id}/unbind-wechat", {"reason": "更换微信号"}, follow_redirects=True)
    assert "已解绑微信" in text(done) and 'id="wechat-unbound"' in text(done)
    db.session.refresh(identity)
    assert identity.user_id is None
    row = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "wechat.unbind"))
    assert row.detail["reason"] == "更换微信号"


def test_a_reason_is_required_and_nothing_changes_without_it(client, world):
    identity, alice = bound(world), world["alice"]
    sign_in(client, "admin")
    done = post(client, f"/console/members/{alice.id}/unbind-wechat", {"reason": " "}, follow_redirects=True)
    assert "请填写解绑原因" in text(done)
    db.session.refresh(identity)
    assert identity.user_id == world["users"]["alice"].id


def test_without_the_csrf_token_the_form_is_refused(client, world):
    identity, alice = bound(world), world["alice"]
    sign_in(client, "admin")
    csrf_token(client, "/console/")
    response = client.post(f"/console/members/{alice.id}/unbind-wechat", data={"reason": "更换微信号"})
    assert response.status_code in (400, 403)
    db.session.refresh(identity)
    assert identity.user_id == world["users"]["alice"].id


def test_a_secretary_sees_no_button_and_is_refused(client, world):
    identity, alice = bound(world), world["alice"]
    sign_in(client, "secretary")
    assert "解绑微信" not in text(client.get(f"/console/members/{alice.id}"))
    done = post(client, f"/console/members/{alice.id}/unbind-wechat", {"reason": "更换微信号"}, follow_redirects=True)
    assert "已解绑微信" not in text(done)
    db.session.refresh(identity)
    assert identity.user_id == world["users"]["alice"].id
