"""Rate limits (points_service/ratelimit.py): sign-in per address and per WeChat identity, check-ins,
self-reports and subscription grants per member (never per address), uploads per user; 429 rate_limited in the
envelope with Retry-After; ProxyFix for the configured proxies; Redis storage shared by every worker."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from config import settings as config_settings
from config.settings import UnsafeConfiguration, load_settings
from points_service import create_app
from points_service.domain.accounts import signin
from tests.api.test_auth_wechat import PRODUCTION_ENV
from tests.factories import auth_header, make_world
from tests.factories.activities import make_activity
from tests.factories.market import make_item

REDIS_URL = "redis://127.0.0.1:6379/0"
NAT = "100.64.0.1"  # a mobile carrier's NAT: many members, one address


@pytest.fixture
def world(app):
    return make_world()


def post(client, url, address=NAT, **kwargs):
    return client.post(url, environ_base={"REMOTE_ADDR": address}, **kwargs)


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def assert_rate_limited(response, window: int = 60):
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == "rate_limited" and body["message"] == "请求过于频繁，请稍后再试"
    assert body["data"] is None and body["request_id"]
    assert 0 < int(response.headers["Retry-After"]) <= window


def test_password_sign_in_is_limited_per_address_with_the_envelope_and_retry_after(app, client):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "3 per minute"
    for n in range(3):
        body = {"username": f"guess{n}", "password": "wrong-password-1"}
        assert post(client, "/api/v1/auth/login", json=body).status_code == 401
    assert_rate_limited(post(client, "/api/v1/auth/login", json={"username": "x1", "password": "y"}))
    other = post(client, "/api/v1/auth/login", address="192.0.2.7", json={"username": "x1", "password": "y"})
    assert other.status_code == 401


def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit_without_a_proxy(app, client):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    for n in range(2):
        post(client, "/api/v1/auth/login", json={}, headers={"X-Forwarded-For": f"10.0.0.{n}"})
    assert_rate_limited(post(client, "/api/v1/auth/login", json={}, headers={"X-Forwarded-For": "10.0.0.9"}))


def test_wechat_login_is_limited_per_address_before_calling_wechat(app, client, monkeypatch):
    app.config["RATELIMIT_WECHAT_PER_IP"] = "2 per minute"
    for n in range(2):
        assert post(client, "/api/v1/auth/wechat", json={"code": f"dev:oNat{n}"}).status_code == 200
    calls = []
    monkeypatch.setattr("points_service.integrations.wechat.WechatClient.code2session", lambda *a: calls.append(a))
    assert_rate_limited(post(client, "/api/v1/auth/wechat", json={"code": "dev:oNat9"}))
    assert calls == []


def test_wechat_login_is_limited_per_identity_from_any_address(app, client):
    app.config["RATELIMIT_WECHAT_PER_OPENID"] = "2 per minute"
    for n in range(2):
        response = post(client, "/api/v1/auth/wechat", address=f"192.0.2.{n}", json={"code": "dev:oLoop"})
        assert response.status_code == 200
    assert_rate_limited(post(client, "/api/v1/auth/wechat", address="192.0.2.9", json={"code": "dev:oLoop"}))
    assert post(client, "/api/v1/auth/wechat", address="192.0.2.9", json={"code": "dev:oOther"}).status_code == 200


def test_two_members_behind_one_address_are_not_limited_together_on_check_in(app, client, world):
    app.config["RATELIMIT_CHECKIN_PER_MEMBER"] = "3 per minute"
    url = f"/api/v1/activities/{make_activity(world['north']).id}/checkins"
    alice, bob = auth_header(world["users"]["alice"]), auth_header(world["users"]["bob"])
    for _ in range(3):  # refused scans count too: the limit is on attempts
        assert post(client, url, json={}, headers=alice).status_code == 422
    assert_rate_limited(post(client, url, json={}, headers=alice))
    assert post(client, url, json={}, headers=bob).status_code == 422


def test_binding_is_limited_per_wechat_identity_before_the_body_is_read(app, client, world):
    app.config["RATELIMIT_BIND_PER_OPENID"] = "2 per hour"
    guesser = post(client, "/api/v1/auth/wechat", json={"code": "dev:oGuesser"}).get_json()["data"]
    other = post(client, "/api/v1/auth/wechat", json={"code": "dev:oOther"}).get_json()["data"]
    guess = {"name": "张晓丽", "phone": "13800000000"}
    for _ in range(2):
        assert post(client, "/api/v1/auth/bind", json=guess, headers=bearer(guesser)).status_code == 404
    assert_rate_limited(post(client, "/api/v1/auth/bind", json={}, headers=bearer(guesser)), window=3600)
    elsewhere = post(client, "/api/v1/auth/bind", address="192.0.2.9", json=guess, headers=bearer(guesser))
    assert elsewhere.status_code == 429
    assert post(client, "/api/v1/auth/bind", json=guess, headers=bearer(other)).status_code == 404


def test_check_out_shares_the_members_check_in_limit(app, client, world):
    app.config["RATELIMIT_CHECKIN_PER_MEMBER"] = "2 per minute"
    alice = auth_header(world["users"]["alice"])
    url = f"/api/v1/activities/{make_activity(world['north']).id}/checkins"
    post(client, url, json={}, headers=alice)
    post(client, "/api/v1/checkins/1/checkout", json={}, headers=alice)
    assert_rate_limited(post(client, url, json={}, headers=alice))


def test_self_reports_are_limited_per_member(app, client, world):
    app.config["RATELIMIT_SELF_REPORT_PER_MEMBER"] = "2 per hour"
    alice, bob = auth_header(world["users"]["alice"]), auth_header(world["users"]["bob"])
    for _ in range(2):
        assert post(client, "/api/v1/records", json={}, headers=alice).status_code == 422
    assert_rate_limited(post(client, "/api/v1/records", json={}, headers=alice), window=3600)
    assert_rate_limited(post(client, "/api/v1/reports", json={}, headers=alice), window=3600)  # the same count
    assert post(client, "/api/v1/records", json={}, headers=bob).status_code == 422


def test_uploads_are_limited_per_user(app, client, world):
    app.config["RATELIMIT_UPLOAD_PER_USER"] = "1 per hour"
    url = f"/api/v1/shop/items/{make_item(world['north']).id}/picture"
    admin = auth_header(world["users"]["admin"])
    assert post(client, url, data={}, headers=admin).status_code == 422
    response = post(client, url, data={}, headers=admin)
    assert response.status_code == 429 and response.get_json()["code"] == "rate_limited"
    assert post(client, "/api/v1/admin/import/members", data={}, headers=admin).status_code == 429


def test_recording_subscription_grants_is_limited_per_account(app, client, world):
    # Each POST adds grants: without a limit, repeated posts would inflate them past what WeChat holds.
    app.config["RATELIMIT_SUBSCRIPTION_PER_MEMBER"] = "2 per hour"
    alice, bob = auth_header(world["users"]["alice"]), auth_header(world["users"]["bob"])
    body = {"template_keys": ["record_decided"]}
    for _ in range(2):
        assert post(client, "/api/v1/me/subscriptions", json=body, headers=alice).status_code == 201
    assert_rate_limited(post(client, "/api/v1/me/subscriptions", json=body, headers=alice), window=3600)
    assert_rate_limited(post(client, "/api/v1/me/subscriptions", json={}, headers=alice), window=3600)
    granted = client.get("/api/v1/me/subscriptions", headers=alice).get_json()["data"]["templates"]
    assert {t["key"]: t["granted"] for t in granted}["record_decided"] == 2
    assert post(client, "/api/v1/me/subscriptions", json=body, headers=bob).status_code == 201
    assert client.get("/api/v1/me/subscriptions", headers=alice).status_code == 200  # reading is not counted


def test_the_subscription_limit_defaults_to_30_an_hour():
    assert config_settings.Testing().RATELIMIT_SUBSCRIPTION_PER_MEMBER == "30 per hour"


def test_the_limit_lifts_when_its_window_has_passed(app, client, world, clock):
    app.config["RATELIMIT_SELF_REPORT_PER_MEMBER"] = "1 per hour"
    alice = auth_header(world["users"]["alice"])
    post(client, "/api/v1/records", json={}, headers=alice)
    assert post(client, "/api/v1/records", json={}, headers=alice).status_code == 429
    clock.advance(3601)
    assert post(client, "/api/v1/records", json={}, headers=alice).status_code == 422


def test_a_malformed_limit_stops_the_app_from_starting():
    settings = config_settings.Testing()
    settings.RATELIMIT_CHECKIN_PER_MEMBER = "thirty a minute"
    with pytest.raises(ValueError):
        create_app(settings)


def _app(**settings):
    config = config_settings.Testing()
    for name, value in settings.items():
        setattr(config, name, value)
    return create_app(config)


def test_behind_one_proxy_the_forwarded_address_is_the_client():
    app = _app(PROXY_COUNT=1, RATELIMIT_LOGIN_PER_IP="1 per minute")
    client = app.test_client()
    assert post(client, "/api/v1/auth/login", json={}, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 422
    assert post(client, "/api/v1/auth/login", json={}, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 422
    assert_rate_limited(post(client, "/api/v1/auth/login", json={}, headers={"X-Forwarded-For": "198.51.100.1"}))


@pytest.fixture
def production_env(monkeypatch):
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POINTS_WECHAT_DEV_LOGIN", raising=False)
    return monkeypatch


def test_production_counts_in_redis_behind_one_proxy(production_env):
    settings = load_settings("production")
    assert settings.RATELIMIT_STORAGE_URI == REDIS_URL and settings.PROXY_COUNT == 1


@pytest.mark.parametrize("uri", ["memory://", ""])
def test_production_refuses_to_start_without_a_shared_rate_limit_storage(production_env, uri):
    production_env.setenv("POINTS_RATELIMIT_STORAGE_URI", uri)
    with pytest.raises(UnsafeConfiguration, match="RATELIMIT_STORAGE_URI"):
        load_settings("production")


def test_production_refuses_to_start_with_rate_limits_off(production_env):
    production_env.setenv("POINTS_RATELIMIT_ENABLED", "0")
    with pytest.raises(UnsafeConfiguration, match="RATELIMIT_ENABLED"):
        load_settings("production")


@pytest.fixture
def redis_server():
    server = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        server.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc}); CI requires it")
    prefix = f"points-test-{uuid.uuid4().hex}"
    yield prefix
    for key in server.scan_iter(f"*{prefix}*"):
        server.delete(key)
    server.close()


def test_workers_sharing_redis_share_one_count(redis_server):
    workers = [_app(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_server,
                    RATELIMIT_LOGIN_PER_IP="2 per minute") for _ in range(2)]
    first, second = (worker.test_client() for worker in workers)
    assert post(first, "/api/v1/auth/login", json={}).status_code == 422
    assert post(second, "/api/v1/auth/login", json={}).status_code == 422
    assert_rate_limited(post(first, "/api/v1/auth/login", json={}))
    assert post(second, "/api/v1/auth/login", address="192.0.2.200", json={}).status_code == 422


def test_the_sign_in_lockout_counts_and_marks_in_redis_too(redis_server):
    app = _app(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_server)
    with app.app_context():
        policy = signin.login_policy(app.config)
        reached = [policy.throttle.count(policy.pair_window, "pair", "nobody", NAT) for _ in range(policy.max_failures)]
        assert reached == [False] * (policy.max_failures - 1) + [True]
        policy.throttle.mark("pair-lock", "nobody", NAT, seconds=policy.lock_seconds)
        assert 0 < policy.throttle.marked_for("pair-lock", "nobody", NAT) <= policy.lock_seconds
        assert policy.throttle.marked_for("pair-lock", "nobody", "192.0.2.1") is None
