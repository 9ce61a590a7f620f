"""The WeChat client against a fake code2session server on loopback: every WeChat answer maps to one
of our errors (never an unexpected exception), and neither keys nor codes reach the logs."""

from __future__ import annotations

import logging
import time

import pytest
from werkzeug import Response

from points_service.domain.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized
from points_service.integrations.wechat import WechatClient, WechatLoginFailed
from tests.fake_wechat import (
    APP_ID,
    APP_SECRET,
    CODE2SESSION,
    SESSION_KEY,
    closed_port_url,
    enable_client_logging,
    serve_fake_wechat,
)


def client_for(base_url: str, *, timeout: float = 2.0, dev_login: bool = False) -> WechatClient:
    return WechatClient(base_url, APP_ID, APP_SECRET, timeout=timeout, dev_login=dev_login)


@pytest.fixture
def fake(httpserver):
    return serve_fake_wechat(httpserver)


@pytest.fixture
def wechat(httpserver, fake):
    return client_for(httpserver.url_for("/"))


def test_a_valid_code_yields_the_openid_unionid_and_session_key(wechat, fake):
    session = wechat.code2session(fake.issue_code("oUser-1", unionid="uUnion-1"))
    assert (session.openid, session.unionid, session.session_key) == ("oUser-1", "uUnion-1", SESSION_KEY)


def test_a_code_is_accepted_once_and_its_replay_is_a_login_failure(wechat, fake):
    code = fake.issue_code("oUser-1")
    wechat.code2session(code)
    with pytest.raises(WechatLoginFailed):
        wechat.code2session(code)


@pytest.mark.parametrize(("errcode", "error", "status", "code"), [
    (40029, WechatLoginFailed, 401, "wechat_login_failed"),
    (40163, WechatLoginFailed, 401, "wechat_login_failed"),
    (45011, RateLimited, 429, "rate_limited"),
    (40226, Forbidden, 403, "wechat_user_blocked"),
    (-1, ServiceUnavailable, 503, "wechat_unavailable"),
    (40013, ServiceUnavailable, 503, "wechat_unavailable"),  # our app id is wrong: not the user's fault
])
def test_wechat_error_codes_map_to_our_errors(wechat, fake, errcode, error, status, code):
    with pytest.raises(error) as raised:
        wechat.code2session(fake.refusing_code(errcode))
    assert (raised.value.status, raised.value.code) == (status, code)


def test_rate_limiting_tells_the_client_when_to_retry(wechat, fake):
    with pytest.raises(RateLimited) as raised:
        wechat.code2session(fake.refusing_code(45011))
    assert int(raised.value.headers["Retry-After"]) > 0


@pytest.mark.parametrize("response", [
    Response("oops", status=500),
    Response("<html>bad gateway</html>", status=502),
    Response("not json", status=200),
    Response("[1, 2]", status=200, content_type="text/plain"),
    Response('"a string"', status=200, content_type="text/plain"),
    Response('{"session_key": "k"}', status=200, content_type="text/plain"),
    Response('{"errcode": "busy"}', status=200, content_type="text/plain"),
])
def test_broken_answers_from_wechat_mean_unavailable(httpserver, response):
    httpserver.expect_request(CODE2SESSION).respond_with_response(response)
    with pytest.raises(ServiceUnavailable):
        client_for(httpserver.url_for("/")).code2session("any-code")


def test_a_slow_wechat_times_out_as_unavailable(httpserver):
    def slow(_request):
        time.sleep(0.5)
        return Response('{"openid": "late"}', content_type="text/plain")

    httpserver.expect_request(CODE2SESSION).respond_with_handler(slow)
    with pytest.raises(ServiceUnavailable):
        client_for(httpserver.url_for("/"), timeout=0.05).code2session("any-code")


def test_a_refused_connection_is_unavailable():
    with pytest.raises(ServiceUnavailable):
        client_for(closed_port_url(), timeout=1).code2session("any-code")


def test_without_credentials_the_client_refuses_instead_of_calling_wechat(httpserver, fake):
    with pytest.raises(ServiceUnavailable):
        WechatClient(httpserver.url_for("/"), None, None).code2session(fake.issue_code("oUser-1"))
    assert fake.calls == 0


def test_dev_codes_bypass_wechat_only_when_dev_login_is_on(httpserver, fake):
    base = httpserver.url_for("/")
    assert client_for(base, dev_login=True).code2session("dev:oDev-1").openid == "oDev-1"
    assert fake.calls == 0
    with pytest.raises(WechatLoginFailed):
        client_for(base, dev_login=False).code2session("dev:oDev-1")
    assert fake.calls == 1


@pytest.mark.parametrize("code", ["dev:", "dev:" + "x" * 65, "dev:has space", "dev:semi;colon"])
def test_dev_codes_must_carry_a_plausible_openid(httpserver, fake, code):
    with pytest.raises(Unauthorized):
        client_for(httpserver.url_for("/"), dev_login=True).code2session(code)


def test_neither_the_session_key_nor_the_app_secret_nor_the_code_is_logged(wechat, fake, caplog, monkeypatch):
    enable_client_logging(monkeypatch)
    caplog.set_level(logging.DEBUG)
    code = fake.issue_code("oUser-1")
    wechat.code2session(code)
    for errcode in (40029, 45011, -1):
        with pytest.raises(Exception):  # noqa: B017 - any mapped error; the logs are what we check
            wechat.code2session(fake.refusing_code(errcode))
    ours = [record for record in caplog.records if record.name not in {"werkzeug", "pytest_httpserver"}]
    assert ours, "the client's own HTTP library should have logged something at DEBUG"
    logged = "\n".join(record.getMessage() for record in ours)
    for secret in (SESSION_KEY, APP_SECRET, code, "oUser-1"):
        assert secret not in logged
