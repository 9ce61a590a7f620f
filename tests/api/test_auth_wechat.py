"""POST /auth/wechat against a fake WeChat on loopback: login, error mapping (never a 500), one use per
code, and the session key, openid and unionid kept server-side."""

from __future__ import annotations

import logging
import time

import jwt
import pytest
import sqlalchemy as sa
from werkzeug import Response

from config.settings import UnsafeConfiguration, load_settings
from points_service.db import db, utcnow
from points_service.models import WechatIdentity
from tests.factories import make_user, make_wechat_identity, make_world
from tests.fake_wechat import (
    APP_SECRET,
    CODE2SESSION,
    SESSION_KEY,
    closed_port_url,
    enable_client_logging,
    serve_fake_wechat,
    wechat_config,
)

LOGIN = "/api/v1/auth/wechat"
ENVELOPE_KEYS = {"code", "message", "data", "request_id"}


@pytest.fixture
def fake(app, httpserver):
    fake = serve_fake_wechat(httpserver)
    app.config.update(wechat_config(httpserver))
    return fake


def login(client, code: str):
    return client.post(LOGIN, json={"code": code})


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_a_first_login_returns_tokens_and_asks_for_binding(client, fake):
    response = login(client, fake.issue_code("oNewUser1", unionid="uNewUser1"))
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["needs_binding"] is True and data["member"] is None
    assert data["access_token"] and data["refresh_token"]
    assert claims(data["access_token"])["sub"].startswith("w:")


def test_the_session_key_is_kept_on_the_server(client, fake):
    login(client, fake.issue_code("oNewUser1", unionid="uNewUser1"))
    identity = db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.openid == "oNewUser1"))
    assert (identity.session_key, identity.unionid) == (SESSION_KEY, "uNewUser1")


def test_a_bound_wechat_user_gets_their_member_back(client, fake):
    world = make_world()
    make_wechat_identity("oAlice0001", world["users"]["alice"])
    db.session.commit()
    data = login(client, fake.issue_code("oAlice0001")).get_json()["data"]
    assert data["needs_binding"] is False
    assert data["member"]["id"] == world["alice"].id and data["member"]["name"] == "张晓丽"
    assert claims(data["access_token"])["sub"] == f"u:{world['users']['alice'].id}"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {data['access_token']}"}).status_code == 200


def test_logging_in_twice_reuses_one_identity(client, fake):
    first = login(client, fake.issue_code("oSameUser")).get_json()["data"]
    second = login(client, fake.issue_code("oSameUser")).get_json()["data"]
    assert claims(first["access_token"])["sub"] == claims(second["access_token"])["sub"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WechatIdentity)) == 1


def test_a_login_code_works_once_and_its_replay_is_401(client, fake):
    code = fake.issue_code("oOnceOnly")
    assert login(client, code).status_code == 200
    replay = login(client, code)
    assert replay.status_code == 401
    assert replay.get_json()["code"] == "wechat_login_failed"


@pytest.mark.parametrize(("errcode", "status", "code"), [
    (40029, 401, "wechat_login_failed"),
    (40163, 401, "wechat_login_failed"),
    (45011, 429, "rate_limited"),
    (40226, 403, "wechat_user_blocked"),
    (-1, 503, "wechat_unavailable"),
    (40013, 503, "wechat_unavailable"),
])
def test_wechat_refusals_map_to_statuses_in_the_envelope(client, fake, errcode, status, code):
    response = login(client, fake.refusing_code(errcode))
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == ENVELOPE_KEYS and body["code"] == code and body["message"]


def test_wechat_rate_limiting_is_429_with_retry_after(client, fake):
    response = login(client, fake.refusing_code(45011))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_an_unknown_code_is_401(client, fake):
    assert login(client, "never-issued").status_code == 401


def test_wechat_failing_with_http_500_is_503(app, client, httpserver):
    httpserver.expect_request(CODE2SESSION).respond_with_response(Response("boom", status=500))
    app.config.update(wechat_config(httpserver))
    response = login(client, "any-code")
    assert response.status_code == 503 and response.get_json()["code"] == "wechat_unavailable"


def test_a_wechat_slower_than_the_timeout_is_503(app, client, httpserver):
    def slow(_request):
        time.sleep(0.5)
        return Response('{"openid": "oLate", "session_key": "k"}', content_type="text/plain")

    httpserver.expect_request(CODE2SESSION).respond_with_handler(slow)
    app.config.update(wechat_config(httpserver, timeout=0.05))
    response = login(client, "any-code")
    assert response.status_code == 503 and response.get_json()["code"] == "wechat_unavailable"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WechatIdentity)) == 0


def test_an_unreachable_wechat_is_503(app, client, httpserver):
    app.config.update(wechat_config(httpserver), WECHAT_API_BASE=closed_port_url())
    response = login(client, "any-code")
    assert response.status_code == 503 and response.get_json()["code"] == "wechat_unavailable"


def test_unconfigured_wechat_is_503_not_500(app, client, fake):
    app.config.update(WECHAT_APP_ID=None, WECHAT_APP_SECRET=None)
    assert login(client, fake.issue_code("oUser")).status_code == 503
    assert fake.calls == 0


def test_session_key_openid_and_unionid_never_leave_the_server(client, fake, caplog, monkeypatch):
    enable_client_logging(monkeypatch)
    caplog.set_level(logging.DEBUG)
    world = make_world()
    make_wechat_identity("oAlice0001", world["users"]["alice"])
    db.session.commit()
    responses = [
        login(client, fake.issue_code("oUnbound01", unionid="uUnbound01")),
        login(client, fake.issue_code("oAlice0001", unionid="uAlice0001")),
    ]
    for errcode in (40029, 45011, 40226, -1):
        responses.append(login(client, fake.refusing_code(errcode)))
    for response in responses:
        exposed = response.get_data(as_text=True) + str(response.headers)
        body = response.get_json()["data"] or {}
        exposed += "".join(str(claims(body[key])) for key in ("access_token", "refresh_token") if key in body)
        for secret in (SESSION_KEY, "session_key", "oUnbound01", "uUnbound01", "oAlice0001", "uAlice0001",
                       "openid", "unionid"):
            assert secret not in exposed
    ours = [r for r in caplog.records if r.name not in {"werkzeug", "pytest_httpserver"}]
    assert any(r.name.startswith("urllib3") for r in ours)
    logged = "\n".join(record.getMessage() for record in ours)
    for secret in (SESSION_KEY, APP_SECRET, "oUnbound01", "oAlice0001"):
        assert secret not in logged


def test_dev_codes_are_refused_when_dev_login_is_off(client, fake):
    response = login(client, "dev:oDeveloper")
    assert response.status_code == 401
    assert fake.calls == 1  # the code went to WeChat, which does not know it


def test_dev_codes_log_in_without_wechat_when_dev_login_is_on(app, client, fake):
    app.config["WECHAT_DEV_LOGIN"] = True
    response = login(client, "dev:oDeveloper")
    assert response.status_code == 200 and response.get_json()["data"]["needs_binding"] is True
    assert fake.calls == 0


def test_an_overlong_dev_openid_is_refused_not_a_database_error(app, client):
    app.config["WECHAT_DEV_LOGIN"] = True
    response = login(client, "dev:" + "o" * 100)
    assert response.status_code == 401


def test_a_deactivated_account_cannot_sign_in_through_wechat(client, fake):
    world = make_world()
    make_wechat_identity("oAlice0001", world["users"]["alice"])
    world["users"]["alice"].is_active = False
    db.session.commit()
    response = login(client, fake.issue_code("oAlice0001"))
    assert response.status_code == 403 and response.get_json()["code"] == "account_disabled"
    assert response.get_json()["data"] is None


PRODUCTION_ENV = {
    "POINTS_SECRET_KEY": "s" * 48,
    "POINTS_PHONE_HASH_KEY": "phone-hash-key-for-production-test",
    "POINTS_DATABASE_URL": "postgresql+psycopg://points@db/points",
    "POINTS_WECHAT_APP_ID": "wx-prod",
    "POINTS_WECHAT_APP_SECRET": "prod-secret",
    "POINTS_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
}


@pytest.fixture
def production_env(monkeypatch):
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POINTS_WECHAT_DEV_LOGIN", raising=False)
    return monkeypatch


def test_production_settings_start_with_dev_login_off(production_env):
    assert load_settings("production").WECHAT_DEV_LOGIN is False


@pytest.mark.parametrize("value", ["1", "true", "on"])
def test_production_refuses_to_start_with_dev_login_on(production_env, value):
    production_env.setenv("POINTS_WECHAT_DEV_LOGIN", value)
    with pytest.raises(UnsafeConfiguration, match="WECHAT_DEV_LOGIN"):
        load_settings("production")


def test_production_refuses_to_start_without_wechat_credentials(production_env):
    production_env.delenv("POINTS_WECHAT_APP_SECRET")
    with pytest.raises(UnsafeConfiguration, match="WECHAT_APP_SECRET"):
        load_settings("production")


def test_a_console_user_without_wechat_is_unaffected_by_wechat_logins(client, fake):
    make_user(username="console1")
    db.session.commit()
    login(client, fake.issue_code("oSomeone"))
    identity = db.session.scalar(sa.select(WechatIdentity))
    assert identity.user_id is None


@pytest.mark.postgres  # in-memory SQLite has one connection, so no second writer can interleave
def test_a_parallel_first_login_of_the_same_person_is_not_a_500(app, client):
    """Between our lookup and our insert, another request creates the same identity."""
    app.config["WECHAT_DEV_LOGIN"] = True
    session, raced = db.session(), []

    def other_request_wins(flushing, _context, _instances):
        if not raced and any(isinstance(obj, WechatIdentity) for obj in flushing.new):
            raced.append(True)
            with db.engine.connect() as other:
                other.execute(sa.insert(WechatIdentity).values(openid="oRacer0001", created_at=utcnow()))
                other.commit()

    sa.event.listen(session, "before_flush", other_request_wins)
    try:
        response = login(client, "dev:oRacer0001")
    finally:
        sa.event.remove(session, "before_flush", other_request_wins)
    assert raced and response.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WechatIdentity)) == 1
