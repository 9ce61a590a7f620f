"""Revocation that bites: logging out, or a reused refresh token revoking its family, makes the account's access
tokens fail at once, not when they expire; a deactivated account's tokens fail likewise."""

from __future__ import annotations

import pytest

from points_service.db import db
from tests.factories import PASSWORD, auth_header, make_user, make_world

ME = "/api/v1/me"


@pytest.fixture
def user(app):
    user = make_user(username="console1")
    db.session.commit()
    return user


def sign_in(client) -> dict:
    return client.post("/api/v1/auth/login", json={"username": "console1", "password": PASSWORD}).get_json()["data"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_logout_revokes_the_refresh_family_and_the_access_token_at_once(client, user):
    pair = sign_in(client)
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["refresh_token"])).status_code == 200
    after = client.get(ME, headers=bearer(pair["access_token"]))
    assert after.status_code == 401 and after.get_json()["code"] == "token_invalid"
    refresh = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refresh.status_code == 401


def test_logout_needs_the_refresh_token_not_the_access_token(client, user):
    pair = sign_in(client)
    assert client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 401
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200


def test_another_device_refreshes_into_working_tokens_after_a_logout(client, user):
    phone, laptop = sign_in(client), sign_in(client)
    client.post("/api/v1/auth/logout", headers=bearer(phone["refresh_token"]))
    assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 401
    fresh = client.post("/api/v1/auth/refresh", headers=bearer(laptop["refresh_token"])).get_json()["data"]
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200


def test_a_reused_refresh_token_kills_the_access_tokens_of_its_account(client, user, token_clock):
    pair = sign_in(client)
    rotated = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).get_json()["data"]
    token_clock.advance(client.application.config["REFRESH_REUSE_GRACE_SECONDS"])  # past the retry grace
    reuse = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert reuse.get_json()["code"] == "refresh_token_reused"
    assert client.get(ME, headers=bearer(rotated["access_token"])).status_code == 401


def test_a_deactivated_accounts_access_token_fails_at_once(client, user):
    pair = sign_in(client)
    user.is_active = False
    db.session.commit()
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 401


def test_checking_the_version_costs_no_statement_beyond_the_principals(client, user, statements):
    pair = sign_in(client)
    statements.clear()
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    assert not any("token_version" in s and "UPDATE" in s.upper() for s in statements)
    assert sum("token_version" in s for s in statements) == 1


# The writes that load only the acting member's principal (``acting_member_required``), not the full one.
ACTING_AS_MEMBER = ("/api/v1/activities/1/checkins", "/api/v1/checkins/1/checkout", "/api/v1/records",
                    "/api/v1/shop/orders")


@pytest.mark.parametrize("url", ACTING_AS_MEMBER)
@pytest.mark.parametrize("revoked", ["logged_out", "account_disabled", "member_deactivated"])
def test_the_writes_that_act_only_as_the_member_refuse_a_revoked_token_like_every_endpoint(client, app, url,
                                                                                         revoked):
    world = make_world()
    alice, header = world["users"]["alice"], auth_header(world["users"]["alice"])
    db.session.commit()
    assert client.post(url, json={}, headers=header).status_code == 422  # accepted: his body is checked next
    if revoked == "logged_out":
        alice.token_version += 1
    elif revoked == "account_disabled":
        alice.is_active = False
    else:
        world["alice"].is_active = False
    db.session.commit()
    response = client.post(url, json={}, headers=header)
    assert response.status_code == 401 and response.get_json()["code"] == "token_invalid"
