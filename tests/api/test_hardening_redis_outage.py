"""Redis (the rate-limit storage) down or silent: rate limits are served uncounted, but the sign-in lockout does not
fail open: password sign-in answers 503 ``service_unavailable`` (API and console alike) and writes nothing. A Redis
that accepts connections and never answers is given up on after the storage's socket timeouts."""

from __future__ import annotations

import socket
import threading

import pytest
import sqlalchemy as sa
from limits.errors import StorageError

from config import settings
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


class SilentRedis:
    """A server that accepts connections and never answers: a hung Redis. ``returns(request)`` runs
    ``request(client)`` in a thread, with a test client of its own (a client keeps the contexts of its last request
    pushed, in the thread that sent it): its response, or None when it has not returned within 10 s. Closing the
    server on teardown ends a request still waiting on it, which is waited for before the app is torn down."""

    def __init__(self, app) -> None:
        self._app = app
        self._server = socket.create_server(("127.0.0.1", 0))
        self.uri = f"redis://127.0.0.1:{self._server.getsockname()[1]}/12"
        self._accepted: list[socket.socket] = []
        self._requests: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self._accepted.append(self._server.accept()[0])
            except OSError:
                return

    def returns(self, request):
        done = []
        def send() -> None:
            with self._app.test_client() as client:
                done.append(request(client))

        thread = threading.Thread(target=send, daemon=True)
        self._requests.append(thread)
        thread.start()
        thread.join(timeout=10)
        return done[0] if done else None

    def close(self) -> None:
        self._server.close()
        for connection in self._accepted:
            connection.close()
        for thread in self._requests:
            thread.join(timeout=10)


@pytest.fixture
def silent_redis(app):
    server = SilentRedis(app)
    yield server
    server.close()


def test_the_rate_limit_storage_has_short_socket_timeouts_by_default():
    options = settings.Testing().RATELIMIT_STORAGE_OPTIONS
    assert 0 < options["socket_connect_timeout"] <= 1 and 0 < options["socket_timeout"] <= 1


def test_with_redis_silent_password_sign_in_returns_503(app, user, storage_at, silent_redis):
    storage_at(silent_redis.uri)
    response = silent_redis.returns(lambda client: client.post("/api/v1/auth/login", json={
        "username": "secretary1", "password": PASSWORD}))
    assert response is not None, "the sign-in waited on a silent Redis"
    assert_sign_in_unavailable(response)
    assert nothing_written()


def console_sign_in(client):
    token = csrf_token(client)
    return client.post("/console/login", data={"username": "secretary1", "password": PASSWORD, "csrf_token": token})


def test_with_redis_silent_the_console_sign_in_returns_503(app, user, storage_at, silent_redis):
    storage_at(silent_redis.uri)
    response = silent_redis.returns(console_sign_in)
    assert response is not None, "the sign-in waited on a silent Redis"
    assert response.status_code == 503 and SIGN_IN_UNAVAILABLE in text(response)


def test_with_redis_silent_rate_limits_are_served_uncounted(app, storage_at, silent_redis):
    storage_at(silent_redis.uri)
    response = silent_redis.returns(lambda client: client.post("/api/v1/auth/wechat", json={"code": "dev:oSilent"}))
    assert response is not None, "the request waited on a silent Redis"
    assert response.status_code == 200
