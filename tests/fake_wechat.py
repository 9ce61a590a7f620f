"""A stand-in for WeChat's code2session endpoint, served on loopback by pytest-httpserver.

It behaves like api.weixin.qq.com where it matters to us: HTTP 200 with an ``errcode`` for refusals,
``text/plain`` JSON, and each login code accepted once (a replay answers 40163).
"""

from __future__ import annotations

import itertools
import json

from werkzeug import Request, Response

APP_ID = "wx-test-app-id"
APP_SECRET = "test-app-secret-do-not-log"
SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
CODE2SESSION = "/sns/jscode2session"

_codes = itertools.count(1)


class FakeWechat:
    def __init__(self) -> None:
        self.logins: dict[str, dict] = {}  # js_code -> the session WeChat would answer
        self.refusals: dict[str, int] = {}  # js_code -> errcode
        self.used: set[str] = set()
        self.calls = 0

    def issue_code(self, openid: str, unionid: str | None = None) -> str:
        """What wx.login gives the mini-program: a fresh code for this WeChat user."""
        code = f"0{next(_codes):08d}wxcode"
        self.logins[code] = {"openid": openid, "session_key": SESSION_KEY,
                             **({"unionid": unionid} if unionid else {})}
        return code

    def refusing_code(self, errcode: int) -> str:
        code = f"0{next(_codes):08d}refused"
        self.refusals[code] = errcode
        return code

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        args = request.args
        if (args.get("appid"), args.get("secret"), args.get("grant_type")) != (
                APP_ID, APP_SECRET, "authorization_code"):
            return self._answer({"errcode": 40013, "errmsg": "invalid appid"})
        code = args.get("js_code", "")
        if code in self.refusals:
            return self._answer({"errcode": self.refusals[code], "errmsg": "refused"})
        if code in self.used:
            return self._answer({"errcode": 40163, "errmsg": "code been used"})
        if code not in self.logins:
            return self._answer({"errcode": 40029, "errmsg": "invalid code"})
        self.used.add(code)
        return self._answer(self.logins[code])

    @staticmethod
    def _answer(payload: dict) -> Response:
        # The real endpoint labels its JSON text/plain.
        return Response(json.dumps(payload), status=200, content_type="text/plain")


def serve_fake_wechat(httpserver) -> FakeWechat:
    fake = FakeWechat()
    httpserver.expect_request(CODE2SESSION, method="GET").respond_with_handler(fake)
    return fake


def wechat_config(httpserver, timeout: float = 2.0) -> dict:
    """App settings that point the WeChat client at the fake server, with dev login off."""
    return {
        "WECHAT_API_BASE": httpserver.url_for("/").rstrip("/"),
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "WECHAT_TIMEOUT_SECONDS": timeout,
        "WECHAT_DEV_LOGIN": False,
    }


def closed_port_url() -> str:
    """A loopback URL nothing listens on, so connecting is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def enable_client_logging(monkeypatch) -> None:
    """Re-enable the loggers under test: an Alembic run earlier in the session (migrations/env.py's
    fileConfig) disables every logger that existed then, which would make a log check vacuous."""
    import logging

    for name in ("urllib3.connectionpool", "points_service.integrations.wechat", "points_service.api.errors"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)


STABLE_TOKEN = "/cgi-bin/stable_token"
SUBSCRIBE_SEND = "/cgi-bin/message/subscribe/send"


class FakeSubscribe:
    """WeChat's stable_token and subscribeMessage.send: tokens numbered per issue, sends recorded, and
    scripted answers (an errcode, or "500" for an HTTP error) consumed one per send, then success."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.valid_token: str | None = None
        self.sends: list[dict] = []  # every send request WeChat received, with the token used
        self.script: list[int | str] = []

    def token(self, request: Request) -> Response:
        body = request.get_json(force=True)
        if (body.get("appid"), body.get("secret"), body.get("grant_type")) != (
                APP_ID, APP_SECRET, "client_credential"):
            return FakeWechat._answer({"errcode": 40013, "errmsg": "invalid appid"})
        if self.valid_token is None or body.get("force_refresh"):
            self.tokens_issued += 1
            self.valid_token = f"token-{self.tokens_issued}"
        return FakeWechat._answer({"access_token": self.valid_token, "expires_in": 7200})

    def send(self, request: Request) -> Response:
        body = request.get_json(force=True)
        self.sends.append({**body, "access_token": request.args.get("access_token")})
        if request.args.get("access_token") != self.valid_token:
            return FakeWechat._answer({"errcode": 40001, "errmsg": "invalid credential"})
        answer = self.script.pop(0) if self.script else 0
        if answer == "500":
            return Response("busy", status=500)
        return FakeWechat._answer({"errcode": answer, "errmsg": "ok" if answer == 0 else "refused"})


def serve_fake_subscribe(httpserver) -> FakeSubscribe:
    fake = FakeSubscribe()
    httpserver.expect_request(STABLE_TOKEN, method="POST").respond_with_handler(fake.token)
    httpserver.expect_request(SUBSCRIBE_SEND, method="POST").respond_with_handler(fake.send)
    return fake
