"""POST /auth/refresh retried after a lost answer: within POINTS_REFRESH_REUSE_GRACE_SECONDS of its rotation the
same refresh token gets a fresh pair (audited ``token.refresh_retry``) and the pair the lost answer carried is
revoked; later, or once that pair was used, it is reuse (401 ``refresh_token_reused``, the family revoked)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry
from tests.factories import PASSWORD, make_user

ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"


@pytest.fixture
def user(app):
    user = make_user(username="console1")
    db.session.commit()
    return user


@pytest.fixture
def pair(client, user) -> dict:
    return ok(client.post("/api/v1/auth/login", json={"username": "console1", "password": PASSWORD}))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def refused(response, status: int = 401, code: str = "refresh_token_reused") -> None:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] == code and body["message"] and body["data"] is None


def audits(action: str) -> list[AuditEntry]:
    return db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)).all()


def test_a_retry_after_a_lost_answer_gets_a_working_pair(client, pair, token_clock):
    ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))  # the answer never reaches the phone
    token_clock.advance(3)
    retried = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    assert client.get(ME, headers=bearer(retried["access_token"])).status_code == 200
    assert ok(client.post(REFRESH, headers=bearer(retried["refresh_token"])))["refresh_token"]
    [entry] = audits("token.refresh_retry")
    assert entry.result == "ok" and entry.request_id and entry.target_type == "refresh_tokens"
    assert audits("token.reuse") == []


def test_the_pair_the_lost_answer_carried_no_longer_refreshes(client, pair, token_clock):
    lost = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    token_clock.advance(3)
    ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(lost["refresh_token"])))


def test_after_the_grace_the_retry_is_reuse_and_the_family_is_revoked(client, pair, token_clock):
    rotated = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    token_clock.advance(31)
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(rotated["refresh_token"])))
    [entry] = audits("token.reuse")
    assert entry.result == "revoked" and audits("token.refresh_retry") == []


def test_once_the_new_pair_was_used_the_old_token_is_reuse(client, pair, token_clock):
    rotated = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    newest = ok(client.post(REFRESH, headers=bearer(rotated["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(newest["refresh_token"])))


def test_a_grace_of_zero_makes_every_second_use_reuse(app, client, pair):
    app.config["REFRESH_REUSE_GRACE_SECONDS"] = 0
    ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))


def test_a_retry_after_logout_is_refused(client, pair, token_clock):
    rotated = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    assert client.post("/api/v1/auth/logout", headers=bearer(rotated["refresh_token"])).status_code == 200
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))


def test_a_retry_for_an_account_disabled_meanwhile_is_refused_and_ends_the_family(client, user, pair, token_clock):
    rotated = ok(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    user.is_active = False
    db.session.commit()
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])), status=403, code="account_disabled")
    user.is_active = True
    db.session.commit()
    refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])))
    refused(client.post(REFRESH, headers=bearer(rotated["refresh_token"])))
