"""Settings classes. The values a deployment sets are read from ``POINTS_<NAME>`` environment variables
(docs/configuration.md lists them); the rest are fixed here.

Production refuses to start with development conveniences or missing secrets (see ``Production.check``).
"""

from __future__ import annotations

import functools
import os
import tempfile
from datetime import timedelta
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_POLICY_FILE = CONFIG_DIR / "policy.yaml"


RATE_LIMIT_SETTINGS = ("RATELIMIT_LOGIN_PER_IP", "RATELIMIT_WECHAT_PER_IP", "RATELIMIT_WECHAT_PER_OPENID",
                       "RATELIMIT_BIND_PER_OPENID",
                       "RATELIMIT_CHECKIN_PER_MEMBER", "RATELIMIT_SELF_REPORT_PER_MEMBER", "RATELIMIT_UPLOAD_PER_USER",
                       "RATELIMIT_SUBSCRIPTION_PER_MEMBER")
SHARED_LIMIT_STORAGES = ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")


class UnsafeConfiguration(RuntimeError):
    """Raised at start-up when a production setting is missing or unsafe."""


def _env(name: str, default=None):
    return os.environ.get(f"POINTS_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int, low: int = 1, high: int | None = None) -> int:
    """A whole number of at least ``low`` (by default 1: a retention of 0 days would purge what is still in use, a
    lease of 0 seconds would let a retry take over a request still running) and at most ``high`` if given."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise UnsafeConfiguration(f"POINTS_{name} must be a whole number {bounds}, not {raw!r}")
    return value


class Base:
    ENV_NAME = "base"
    TESTING = False
    TIMEZONE = "Asia/Shanghai"
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    MAX_CONTENT_LENGTH = 5 * 1024 * 1024  # roster files are the largest bodies we accept
    JSON_MAX_DEPTH = 32
    POLICY_FILE = str(DEFAULT_POLICY_FILE)

    # Tokens (RFC 8725: pinned algorithm, short-lived access tokens, checked exp/iat/typ).
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=30)
    JWT_TOKEN_LOCATION = ["headers"]
    JWT_ERROR_MESSAGE_KEY = "message"
    # A refresh token rotated less than this many seconds ago may be presented again and gets a fresh pair: a phone
    # retries when the answer to its refresh was lost (domain/accounts/tokens.py). 0 turns the grace off; at most
    # 300, since within it a copied refresh token is not caught as reuse.
    REFRESH_REUSE_GRACE_SECONDS = 30

    PASSWORD_HASH_METHOD = "scrypt"
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_SECONDS = 15 * 60

    WECHAT_API_BASE = "https://api.weixin.qq.com"
    WECHAT_APP_ID: str | None = None
    WECHAT_APP_SECRET: str | None = None
    WECHAT_TIMEOUT_SECONDS = 5.0
    WECHAT_DEV_LOGIN = False  # accept ``dev:<openid>`` codes instead of calling WeChat
    WECHAT_DEV_SEND = False  # log subscribe messages and mark them sent instead of calling WeChat
    NOTIFICATIONS_FILE = str(CONFIG_DIR / "notifications.yaml")

    # Sign-in lockout (domain/accounts/signin.py), counted in the rate-limit storage: failures of one
    # username from one client address lock that pair; failures from every address guard the account.
    LOGIN_ACCOUNT_MAX_FAILURES = 50  # per LOGIN_ACCOUNT_WINDOW_SECONDS, from all addresses together
    LOGIN_ACCOUNT_WINDOW_SECONDS = 60 * 60
    LOGIN_KNOWN_ADDRESS_DAYS = 30  # an address that signed an account in is trusted by it this long

    # Rate limits (the limits library, points_service/ratelimit.py): "N per minute/hour", several joined by ";".
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"  # production: redis://127.0.0.1:6379/0 (every worker sees one count)
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_KEY_PREFIX = "points"
    # Passed to the storage (Redis: redis-py's connection options). A request waits this long at most for each
    # Redis call: past it, a limit is served uncounted and password sign-in answers 503 (docs/hardening.md).
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    RATELIMIT_LOGIN_PER_IP = "20 per minute; 200 per hour"
    RATELIMIT_WECHAT_PER_IP = "120 per minute"  # members share mobile NATs: generous per address
    RATELIMIT_WECHAT_PER_OPENID = "10 per minute"
    # Binding guesses a name and a phone whose masked form (138****8000) leaves 10,000 possibilities: a person
    # binds once, perhaps after a typo or two; a guesser gets 20 tries a day.
    RATELIMIT_BIND_PER_OPENID = "10 per hour; 20 per day"
    RATELIMIT_CHECKIN_PER_MEMBER = "30 per minute"
    RATELIMIT_SELF_REPORT_PER_MEMBER = "30 per hour"
    RATELIMIT_UPLOAD_PER_USER = "30 per hour"
    # Each POST /me/subscriptions adds grants: a member accepts a few templates at a time, not dozens an hour.
    RATELIMIT_SUBSCRIPTION_PER_MEMBER = "30 per hour"
    READINESS_TIMEOUT_SECONDS = 1.0  # /readyz's PING of Redis waits this long at most (points_service/health.py)
    PROXY_COUNT = 0  # reverse proxies in front of the app whose X-Forwarded-For is trusted (production: 1)

    CHECKIN_TOKEN_STEP_SECONDS = 30
    # An Idempotency-Key left in flight by a killed process is taken over by a retry after this many seconds.
    IDEMPOTENCY_LEASE_SECONDS = 120
    # The daily ``retention`` job (docs/jobs.md): completed Idempotency-Keys are kept this many days (a retry after
    # a month is not a retry), ended WeChat deliveries this many days after their outcome; rows per DELETE.
    IDEMPOTENCY_RETENTION_DAYS = 30
    DELIVERY_RETENTION_DAYS = 90
    RETENTION_BATCH_ROWS = 5000
    # Read replica (docs/configuration.md): the read-only views run there unless the account wrote recently.
    REPLICA_DATABASE_URL: str | None = None
    REPLICA_READ_YOUR_WRITES_SECONDS = 10
    REPLICA_RETRY_SECONDS = 30

    # Console sessions (Flask's signed cookie): no script may read it, cross-site POSTs do not carry it.
    SESSION_COOKIE_NAME = "points_console"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # production: True (served over HTTPS behind nginx)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    # CSRF tokens (Flask-WTF) are checked by the console's blueprint only: the API uses bearer tokens.
    WTF_CSRF_CHECK_DEFAULT = False
    WTF_CSRF_TIME_LIMIT = None  # valid for the session's life: a page left open stays usable
    CONSOLE_LIVE_POLL_SECONDS = 5  # the check-in screen refreshes its code and count this often

    # smorest / OpenAPI; Swagger UI assets are vendored under static/vendor.
    API_TITLE = "双报到双积分 points_service"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/static/vendor/swagger-ui/"

    def __init__(self) -> None:
        self.SECRET_KEY = _env("SECRET_KEY")
        self.JWT_SECRET_KEY = _env("JWT_SECRET_KEY") or self.SECRET_KEY
        # Phones are stored only as a keyed hash (for binding and matching) and a masked form.
        self.PHONE_HASH_KEY = _env("PHONE_HASH_KEY")
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", self.SQLALCHEMY_DATABASE_URI)
        self.WECHAT_API_BASE = _env("WECHAT_API_BASE", self.WECHAT_API_BASE)
        self.WECHAT_APP_ID = _env("WECHAT_APP_ID", self.WECHAT_APP_ID)
        self.WECHAT_APP_SECRET = _env("WECHAT_APP_SECRET", self.WECHAT_APP_SECRET)
        self.WECHAT_DEV_LOGIN = _env_bool("WECHAT_DEV_LOGIN", self.WECHAT_DEV_LOGIN)
        self.WECHAT_DEV_SEND = _env_bool("WECHAT_DEV_SEND", self.WECHAT_DEV_SEND)
        self.NOTIFICATIONS_FILE = _env("NOTIFICATIONS_FILE", self.NOTIFICATIONS_FILE)
        self.POLICY_FILE = _env("POLICY_FILE", self.POLICY_FILE)
        self.EXPORT_DIR = _env("EXPORT_DIR")  # None: instance/exports
        self.RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", self.RATELIMIT_STORAGE_URI)
        self.RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", self.RATELIMIT_ENABLED)
        self.RATELIMIT_STORAGE_OPTIONS = dict(self.RATELIMIT_STORAGE_OPTIONS)  # each instance its own, to change
        for name in RATE_LIMIT_SETTINGS:
            setattr(self, name, _env(name, getattr(self, name)))
        self.PROXY_COUNT = int(_env("PROXY_COUNT", self.PROXY_COUNT))
        self.REPLICA_DATABASE_URL = _env("REPLICA_DATABASE_URL", self.REPLICA_DATABASE_URL)
        self.REPLICA_READ_YOUR_WRITES_SECONDS = float(_env("REPLICA_READ_YOUR_WRITES_SECONDS",
                                                           self.REPLICA_READ_YOUR_WRITES_SECONDS))
        self.REPLICA_RETRY_SECONDS = float(_env("REPLICA_RETRY_SECONDS", self.REPLICA_RETRY_SECONDS))
        self.REFRESH_REUSE_GRACE_SECONDS = _env_int("REFRESH_REUSE_GRACE_SECONDS", self.REFRESH_REUSE_GRACE_SECONDS,
                                                    0, 300)
        for name in ("IDEMPOTENCY_LEASE_SECONDS", "IDEMPOTENCY_RETENTION_DAYS", "DELIVERY_RETENTION_DAYS"):
            setattr(self, name, _env_int(name, getattr(self, name)))

    def check(self) -> None:
        """Refuse settings that must never reach production; no-op outside production."""

    def as_dict(self) -> dict:
        names = [n for n in dir(self) if n.isupper()]
        return {n: getattr(self, n) for n in names}


class Development(Base):
    ENV_NAME = "development"
    WECHAT_DEV_LOGIN = True
    WECHAT_DEV_SEND = True

    def __init__(self) -> None:
        super().__init__()
        # Development keys are generated per instance folder by the app factory when unset.
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL")


@functools.cache
def _test_export_dir() -> str:
    return tempfile.mkdtemp(prefix="points-test-exports-")


class Testing(Base):
    ENV_NAME = "testing"
    TESTING = True
    WECHAT_DEV_LOGIN = True
    WECHAT_DEV_SEND = True
    LOGIN_LOCK_SECONDS = 60
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # tests only: fixtures create many accounts

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = self.SECRET_KEY or "test-secret-key-not-for-production-use-0123456789"
        self.JWT_SECRET_KEY = self.SECRET_KEY
        self.PHONE_HASH_KEY = self.PHONE_HASH_KEY or "test-phone-hash-key"
        self.SQLALCHEMY_DATABASE_URI = _env("TEST_DATABASE_URL") or "sqlite://"
        # Jobs that write files (the annual export) must never write into the checkout's instance folder.
        self.EXPORT_DIR = _test_export_dir()


class Production(Base):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    RATELIMIT_STORAGE_URI = ""  # required: a Redis URI
    PROXY_COUNT = 1  # nginx in front: its X-Forwarded-For names the client

    def check(self) -> None:
        problems = []
        for name in ("SECRET_KEY", "PHONE_HASH_KEY", "SQLALCHEMY_DATABASE_URI"):
            if not getattr(self, name):
                problems.append(f"POINTS_{name.removeprefix('SQLALCHEMY_').replace('URI', 'URL')} is required")
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):  # the token key defaults to SECRET_KEY; set, it signs tokens
            if getattr(self, name) and len(getattr(self, name)) < 32:
                problems.append(f"POINTS_{name} must be at least 32 characters")
        if self.WECHAT_DEV_LOGIN:
            problems.append("POINTS_WECHAT_DEV_LOGIN must be off in production")
        if self.WECHAT_DEV_SEND:
            problems.append("POINTS_WECHAT_DEV_SEND must be off in production")
        if not (self.WECHAT_APP_ID and self.WECHAT_APP_SECRET):
            problems.append("POINTS_WECHAT_APP_ID and POINTS_WECHAT_APP_SECRET are required")
        if self.SQLALCHEMY_DATABASE_URI and self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            problems.append("production needs PostgreSQL, not SQLite")
        if not self.RATELIMIT_STORAGE_URI.startswith(SHARED_LIMIT_STORAGES):
            problems.append("POINTS_RATELIMIT_STORAGE_URI must name Redis (redis://…): memory:// counts per worker")
        if not self.RATELIMIT_ENABLED:
            problems.append("POINTS_RATELIMIT_ENABLED must be on in production")
        if problems:
            raise UnsafeConfiguration("; ".join(problems))


SETTINGS = {cls.ENV_NAME: cls for cls in (Development, Testing, Production)}


def load_settings(name: str | None = None) -> Base:
    name = name or os.environ.get("POINTS_ENV", "development")
    try:
        settings = SETTINGS[name]()
    except KeyError:
        raise UnsafeConfiguration(f"unknown POINTS_ENV {name!r}; expected one of {sorted(SETTINGS)}") from None
    settings.check()
    return settings
