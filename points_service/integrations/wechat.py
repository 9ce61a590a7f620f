"""A thin WeChat mini-program client: only what we call, with WeChat's error codes mapped to ours.

wechatpy's last stable release is from 2021; code2session is one GET, so we own these few lines.
The base URL is configurable so that tests talk to a fake WeChat server on loopback.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

import requests

from points_service.domain.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)

# WeChat takes the app secret and the login code in the query string, and urllib3 logs every request
# line at DEBUG: blank those parameters before any handler sees the record.
_SECRET_PARAMS = re.compile(r"((?:secret|js_code|access_token)=)[^&\s\"]*")


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "secret=" in message or "js_code=" in message or "access_token=" in message:
            record.msg, record.args = _SECRET_PARAMS.sub(r"\1***", message), ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSecrets())

# Real openids are 28 URL-safe characters; anything else (a dev code too) must at least fit the column.
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _is_openid(value) -> bool:
    return isinstance(value, str) and _OPENID.match(value) is not None


class WechatLoginFailed(Unauthorized):
    code, message = "wechat_login_failed", "微信登录失败，请重新进入小程序"


@dataclass(frozen=True)
class WechatSession:
    openid: str
    session_key: str | None
    unionid: str | None = None


# errcode → the error we raise; anything unknown is treated as WeChat being unavailable.
_ERRORS = {
    40029: lambda: WechatLoginFailed(),  # invalid code
    40163: lambda: WechatLoginFailed("登录凭证已被使用，请重新进入小程序"),  # code already used
    45011: lambda: RateLimited("微信登录过于频繁，请稍后再试", retry_after=60),
    40226: lambda: Forbidden("该微信账号存在风险，已被限制登录", code="wechat_user_blocked"),
    -1: lambda: ServiceUnavailable("微信服务繁忙，请稍后再试", code="wechat_unavailable"),
}


class WechatClient:
    def __init__(self, base_url: str, app_id: str | None, app_secret: str | None, timeout: float = 5.0,
                 dev_login: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout = timeout
        self.dev_login = dev_login

    @classmethod
    def from_config(cls, config) -> WechatClient:
        return cls(config["WECHAT_API_BASE"], config["WECHAT_APP_ID"], config["WECHAT_APP_SECRET"],
                   config["WECHAT_TIMEOUT_SECONDS"], config["WECHAT_DEV_LOGIN"])

    def code2session(self, code: str) -> WechatSession:
        if self.dev_login and code.startswith("dev:"):
            if not _is_openid(code[4:]):
                raise WechatLoginFailed("开发登录代码格式不正确")
            return WechatSession(openid=code[4:], session_key=None)
        if not (self.app_id and self.app_secret):
            raise ServiceUnavailable("微信登录未配置", code="wechat_unavailable")
        payload = self._get("/sns/jscode2session", {
            "appid": self.app_id, "secret": self.app_secret, "js_code": code, "grant_type": "authorization_code",
        })
        errcode = payload.get("errcode") or 0
        if errcode:
            log.info("code2session refused: errcode=%s", errcode)  # never log the code or keys
            raise _ERRORS.get(errcode if isinstance(errcode, int) else -1, _ERRORS[-1])()
        openid, unionid = payload.get("openid"), payload.get("unionid")
        if not _is_openid(openid):
            raise ServiceUnavailable("微信服务返回异常", code="wechat_unavailable")
        return WechatSession(openid, payload.get("session_key"), unionid if _is_openid(unionid) else None)

    def _get(self, path: str, params: dict) -> dict:
        try:
            response = requests.get(self.base_url + path, params=params, timeout=self.timeout)
            response.raise_for_status()
            payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("WeChat unreachable: %s", type(exc).__name__)
            raise ServiceUnavailable("微信服务暂时不可用，请稍后再试", code="wechat_unavailable") from exc
        if not isinstance(payload, dict):
            raise ServiceUnavailable("微信服务返回异常", code="wechat_unavailable")
        return payload


# ------------------------------------------------------------------------------------- subscribe messages

# Refused for good: retrying cannot help (no grant / user refused, invalid openid, template or data wrong).
PERMANENT_ERRCODES = frozenset({43101, 40003, 40037, 47003, 41030})
TOKEN_ERRCODES = frozenset({40001, 42001})  # the access token is invalid or expired: refresh, retry once
QUOTA_ERRCODE = 45009  # the app's daily API quota is used up: every send fails until midnight (Asia/Shanghai)
TOKEN_MARGIN_SECONDS = 300  # refresh a cached token this long before WeChat says it expires

# The most HTTP calls one send makes (SubscribeSender.send): stable_token when no token is cached, the send, and on
# a token error (TOKEN_ERRCODES) stable_token with force_refresh and the send again. requests applies the timeout
# to connecting and again to reading, so each call may take twice WECHAT_TIMEOUT_SECONDS.
SEND_MAX_CALLS = 4


def send_worst_case_seconds(timeout: float) -> float:
    """How long one send may take when every call WeChat answers waits out both of its timeouts."""
    return SEND_MAX_CALLS * 2 * timeout


# The stable access token, per (API base, app id), shared by the threads of one process. A process that
# starts fetches its own; stable_token hands every caller the same token until it expires, so processes
# never invalidate each other's (unlike the older /cgi-bin/token).
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class SendFailed(Exception):
    """A subscribe message WeChat did not accept: ``errcode`` (-1 for transport), permanent or not."""

    def __init__(self, errcode: int, errmsg: str, *, permanent: bool) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg, self.permanent = errcode, errmsg, permanent


def forget_tokens() -> None:
    with _tokens_lock:
        _tokens.clear()


class SubscribeSender:
    """Sends subscribe messages through subscribeMessage.send with a cached stable access token."""

    def __init__(self, client: WechatClient, clock=time.monotonic) -> None:
        self.client, self.clock = client, clock

    def send(self, openid: str, template_id: str, data: dict, page: str = "") -> None:
        """Return when WeChat accepted it; raise SendFailed otherwise (permanent or transient)."""
        body = {"touser": openid, "template_id": template_id, "data": data, **({"page": page} if page else {})}
        errcode, errmsg = self._post_send(body, self.access_token())
        if errcode in TOKEN_ERRCODES:
            errcode, errmsg = self._post_send(body, self.access_token(force_refresh=True))
        if errcode:
            raise SendFailed(errcode, errmsg, permanent=errcode in PERMANENT_ERRCODES)

    def access_token(self, force_refresh: bool = False) -> str:
        key = (self.client.base_url, self.client.app_id or "")
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not force_refresh and cached[1] > self.clock():
                return cached[0]
            payload = self._post("/cgi-bin/stable_token", None, {
                "grant_type": "client_credential", "appid": self.client.app_id, "secret": self.client.app_secret,
                "force_refresh": force_refresh})
            token, expires_in = payload.get("access_token"), payload.get("expires_in")
            if not isinstance(token, str) or not isinstance(expires_in, int):
                errcode = payload.get("errcode")
                raise SendFailed(errcode if isinstance(errcode, int) else -1, "stable_token refused", permanent=False)
            _tokens[key] = (token, self.clock() + max(expires_in - TOKEN_MARGIN_SECONDS, 0))
            return token

    def _post_send(self, body: dict, token: str) -> tuple[int, str]:
        payload = self._post("/cgi-bin/message/subscribe/send", {"access_token": token}, body)
        errcode = payload.get("errcode") or 0
        return (errcode if isinstance(errcode, int) else -1), str(payload.get("errmsg", ""))[:200]

    def _post(self, path: str, params: dict | None, body: dict) -> dict:
        try:
            response = requests.post(self.client.base_url + path, params=params, json=body,
                                     timeout=self.client.timeout)
            response.raise_for_status()
            payload = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("WeChat unreachable: %s", type(exc).__name__)
            raise SendFailed(-1, type(exc).__name__, permanent=False) from exc
        if not isinstance(payload, dict):
            raise SendFailed(-1, "not a JSON object", permanent=False)
        return payload


class LogOnlySender:
    """Development: log the message (never the openid) and treat it as sent; production refuses this mode."""

    def send(self, openid: str, template_id: str, data: dict, page: str = "") -> None:
        log.info("dev subscribe message %s to %s…: %s", template_id, openid[:4], data)


def subscribe_sender(config):
    if config.get("WECHAT_DEV_SEND"):
        return LogOnlySender()
    return SubscribeSender(WechatClient.from_config(config))
