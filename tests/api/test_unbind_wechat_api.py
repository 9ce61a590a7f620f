"""POST /members/{id}/unbind-wechat: those who manage a member's status detach his WeChat identity; his sessions
end at once, the same WeChat signs in unbound and he binds again from whichever WeChat he now uses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, Role, WechatIdentity
from tests.factories import auth_header, make_member, make_user, make_world

PHONE = "13800138000"


@pytest.fixture
def world(app):
    world = make_world()
    world["hong"] = make_member(world["fin1"], world["north"], name="张晓红", phone=PHONE)
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="fin_org_admin")
    db.session.commit()
    return world


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def wechat_login(client, openid: str) -> dict:
    response = client.post("/api/v1/auth/wechat", json={"code": f"dev:{openid}"})
    assert response.status_code == 200
    return response.get_json()["data"]


def bind(client, token: str):
    return client.post("/api/v1/auth/bind", json={"name": "张晓红", "phone": PHONE}, headers=bearer(token))


def signed_in_and_bound(client, openid: str) -> dict:
    return bind(client, wechat_login(client, openid)["access_token"]).get_json()["data"]


def unbind(client, member_id: int, user, body=None):
    return client.post(f"/api/v1/members/{member_id}/unbind-wechat",
                       json={"reason": "党员更换了微信号"} if body is None else body, headers=auth_header(user))


def test_after_unbinding_old_tokens_fail_the_same_wechat_signs_in_unbound_and_he_binds_again(client, world):
    hong = world["hong"]
    old = signed_in_and_bound(client, "oHongOld001")
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 200
    response = unbind(client, hong.id, world["users"]["admin"])
    assert response.status_code == 200
    assert response.get_json()["data"]["id"] == hong.id and "openid" not in response.get_data(as_text=True)
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(old["refresh_token"]))
    assert refreshed.status_code == 401 and refreshed.get_json()["code"] == "refresh_token_reused"
    again = wechat_login(client, "oHongOld001")
    assert again["needs_binding"] is True and again["member"] is None
    new = signed_in_and_bound(client, "oHongNew001")  # his new WeChat binds his roster row
    assert new["member"]["id"] == hong.id
    assert client.get("/api/v1/me", headers=bearer(new["access_token"])).status_code == 200
    assert wechat_login(client, "oHongNew001")["needs_binding"] is False
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "wechat.unbind"))
    assert audit.detail["reason"] == "党员更换了微信号" and audit.actor_id == world["users"]["admin"].id


def test_the_old_wechat_may_bind_again_after_unbinding(client, world):
    signed_in_and_bound(client, "oHongOld001")
    assert unbind(client, world["hong"].id, world["users"]["hr"]).status_code == 200
    token = wechat_login(client, "oHongOld001")["access_token"]
    assert bind(client, token).status_code == 200


@pytest.mark.parametrize("who", ["secretary", "community_admin", "alice"])
def test_those_who_do_not_manage_his_status_get_403(client, world, who):
    signed_in_and_bound(client, "oHongOld001")
    response = unbind(client, world["hong"].id, world["users"][who])
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    assert db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == "oHongOld001"))


def test_a_member_outside_ones_scope_answers_like_a_missing_one(client, world):
    outside = unbind(client, world["carol"].id, world["users"]["hr"])  # carol: 教育局, outside finance HR
    missing = unbind(client, 2_000_000_000, world["users"]["hr"])
    assert outside.status_code == missing.status_code == 404
    assert outside.get_json()["code"] == missing.get_json()["code"]
    assert outside.get_json()["message"] == missing.get_json()["message"]


def test_a_member_with_no_bound_wechat_is_409(client, world):
    response = unbind(client, world["hong"].id, world["users"]["org_admin"])
    assert response.status_code == 409 and response.get_json()["code"] == "wechat_not_bound"


@pytest.mark.parametrize("body", [{}, {"reason": "   "}, {"reason": "x" * 201}, {"reason": "ok", "openid": "o"}])
def test_a_missing_blank_or_long_reason_is_422(client, world, body):
    signed_in_and_bound(client, "oHongOld001")
    response = unbind(client, world["hong"].id, world["users"]["admin"], body)
    assert response.status_code == 422
    assert db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == "oHongOld001"))
