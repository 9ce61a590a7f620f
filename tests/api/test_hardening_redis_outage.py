"""Redis (the rate-limit storage) down: rate limits are served uncounted, but the sign-in lockout does not fail
open: password sign-in answers 503 ``service_unavailable`` (API and console alike) and writes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from limits.errors import StorageError

from points_service import ratelimit
from points_service.db import db
from points_service.models import AuditEntry, RefreshToken
from tests.console.helpers import csrf_token, text
from tests.factories import PASSWORD, make_user

CLOSED_PORT = "redis://127.0.0.1:1/12"  # nothing listens on port 1: connections are refused at once
SIGN_IN_UNAVAILABLE = "登录服务暂时不可用，请稍后再试"


@pytest.fixture
def user(app):
    user = make_user(username="secretary1")
    db.session.commit()
    return user


@pytest.fixture
def storage_at(app, monkeypatch):
    """Point the app's rate limits (and so the lockout) at ``uri``, built as at start-up from the settings."""
    def point(uri: str) -> None:
        monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", uri)
        monkeypatch.setitem(app.extensions, ratelimit.EXTENSION, ratelimit.rate_limits(app.config))
    return point


def nothing_written() -> bool:
    return not db.session.scalars(sa.select(AuditEntry)).all() and not db.session.scalars(sa.select(RefreshToken)).all()


def assert_sign_in_unavailable(response) -> None:
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "service_unavailable" and body["message"] == SIGN_IN_UNAVAILABLE
    assert body["data"] is None and body["request_id"]


@pytest.mark.parametrize("password", [PASSWORD, "wrong-password-1"])
def test_with_redis_unreachable_password_sign_in_answers_503_and_writes_nothing(app, client, user, storage_at,
                                                                               password):
    storage_at(CLOSED_PORT)
    assert_sign_in_unavailable(client.post("/api/v1/auth/login", json={"username": "secretary1", "password": password}))
    assert nothing_written()


def test_with_redis_unreachable_the_console_sign_in_shows_the_message_with_503(app, client, user, storage_at):
    token = csrf_token(client)  # the page itself needs no storage
    storage_at(CLOSED_PORT)
    response = client.post("/console/login", data={"username": "secretary1", "password": PASSWORD,
                                                   "csrf_token": token})
    assert response.status_code == 503 and SIGN_IN_UNAVAILABLE in text(response)
    assert nothing_written()


def test_with_redis_unreachable_rate_limits_are_served_uncounted(app, client, storage_at):
    storage_at(CLOSED_PORT)
    app.config["RATELIMIT_WECHAT_PER_IP"] = "1 per minute"
    for _ in range(3):
        assert client.post("/api/v1/auth/wechat", json={"code": "dev:oOutage"}).status_code == 200


def test_a_storage_failing_after_the_password_was_checked_issues_no_tokens(app, client, user, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise StorageError(ConnectionError("Redis went away"))
    # The lock check reads; a success then marks the address as known (incr), which fails here.
    monkeypatch.setattr(app.extensions[ratelimit.EXTENSION].storage, "incr", refuse)
    assert_sign_in_unavailable(client.post("/api/v1/auth/login", json={"username": "secretary1", "password": PASSWORD}))
    assert nothing_written()
