"""POST /api/v1/admin/users/{id}/disable and /enable over HTTP: admins only; a disabled account's access token,
refresh token and sign-in are refused at once and stay refused after it is enabled again; the refusals (oneself,
a member's account, the last active admin, a repeated switch) are 409 with a stable code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, Role, User
from tests.factories import PASSWORD, auth_header, make_user, make_world

ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["deputy"] = make_user((Role.ADMIN, None), username="deputy")
    db.session.commit()
    return world


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client, username: str) -> dict:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200
    return response.get_json()["data"]


def switch(client, world, user_id: int, action: str, *, by: str = "admin", **body):
    return client.post(f"/api/v1/admin/users/{user_id}/{action}", json=body or None,
                       headers=auth_header(world["users"][by]))


def test_disabling_answers_the_account_and_ends_its_tokens_at_once(client, world):
    secretary = world["users"]["secretary"]
    pair = sign_in(client, "secretary")
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    response = switch(client, world, secretary.id, "disable", reason="调离岗位")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["id"] == secretary.id and data["username"] == "secretary" and data["is_active"] is False
    assert data["roles"] == [{"role": "branch_secretary", "scope_type": "organization", "scope_id": world["fin1"].id}]
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 401
    assert client.post(REFRESH, headers=bearer(pair["refresh_token"])).status_code == 401
    login = client.post("/api/v1/auth/login", json={"username": "secretary", "password": PASSWORD})
    assert login.status_code == 401
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.disable"))
    assert entry.actor_id == world["users"]["admin"].id and entry.detail == {"reason": "调离岗位"}


def test_enabling_lets_the_account_sign_in_again_but_revives_no_old_token(client, world):
    secretary = world["users"]["secretary"]
    pair = sign_in(client, "secretary")
    assert switch(client, world, secretary.id, "disable").status_code == 200
    response = switch(client, world, secretary.id, "enable")
    assert response.status_code == 200 and response.get_json()["data"]["is_active"] is True
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 401
    assert client.post(REFRESH, headers=bearer(pair["refresh_token"])).status_code == 401
    fresh = sign_in(client, "secretary")
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize("role", ["secretary", "community_admin", "hr", "alice"])
def test_only_admins_may_switch_an_account(client, world, role):
    target = world["users"]["deputy"]
    for action in ("disable", "enable"):
        response = switch(client, world, target.id, action, by=role)
        assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    db.session.expire_all()
    assert db.session.get(User, target.id).is_active


def test_a_missing_account_is_404(client, world):
    for action in ("disable", "enable"):
        assert switch(client, world, 999999, action).status_code == 404


@pytest.mark.parametrize(("target", "action", "code"), [
    ("admin", "disable", "own_account"),
    ("alice", "disable", "member_account"),
    ("alice", "enable", "member_account"),
    ("secretary", "enable", "user_already_enabled"),
])
def test_refusals_are_409_with_a_stable_code_and_a_chinese_message(client, world, target, action, code):
    response = switch(client, world, world["users"][target].id, action)
    body = response.get_json()
    assert response.status_code == 409 and body["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])


def test_disabling_a_disabled_account_is_409_and_writes_nothing(client, world):
    secretary = world["users"]["secretary"]
    switch(client, world, secretary.id, "disable")
    again = switch(client, world, secretary.id, "disable")
    assert again.status_code == 409 and again.get_json()["code"] == "user_already_disabled"
    audits = sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "user.disable")
    assert db.session.scalar(audits) == 1


def test_a_re_enabled_admin_signs_in_afresh_and_acts_again(client, world):
    admin, deputy = world["users"]["admin"], world["users"]["deputy"]
    assert switch(client, world, deputy.id, "disable").status_code == 200
    assert switch(client, world, deputy.id, "enable").status_code == 200
    assert switch(client, world, admin.id, "disable", by="deputy").status_code == 401  # a token from before
    token = sign_in(client, "deputy")["access_token"]
    response = client.post(f"/api/v1/admin/users/{admin.id}/disable", headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["data"]["is_active"] is False


def test_an_unknown_field_or_an_overlong_reason_is_422(client, world):
    secretary = world["users"]["secretary"]
    unknown = switch(client, world, secretary.id, "disable", is_active=False)
    assert unknown.status_code == 422 and "is_active" in unknown.get_json()["data"]["errors"]
    long = switch(client, world, secretary.id, "disable", reason="很" * 201)
    assert long.status_code == 422 and "reason" in long.get_json()["data"]["errors"]
    db.session.expire_all()
    assert db.session.get(User, secretary.id).is_active
