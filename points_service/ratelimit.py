"""Rate limits: the ``limits`` library's storage (Redis in production, memory in development and tests)
counting requests per client address, per account, per member or per WeChat identity.

Views name what they count by: ``@limit("RATELIMIT_CHECKIN_PER_MEMBER", by_account)`` under
``@login_required`` counts per signed-in account (never per address: members share mobile NATs) before the
body is parsed. Past a limit the answer is ``429 rate_limited`` with ``Retry-After``. Keys in the storage are
keyed hashes: no username, openid or address is stored or logged in the clear.

Every limit is counted by ``hit``, where a view or use case names it, so the app holds only the storage and
the strategy (``RateLimits``): Flask-Limiter, which wraps the same library, would add hooks before and after
every request to look for limits of its own (about 0.1 ms a request, measured; docs/benchmarks.md).

``LoginThrottle`` gives the sign-in use cases (``domain/accounts/signin``) the same storage for their lockout.
Unlike a limit, the lockout does not serve without its storage (that would allow unlimited password guessing):
password sign-in answers ``503 service_unavailable`` (``SignInUnavailable``) before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps

from flask import current_app, g, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import STRATEGIES, MovingWindowRateLimiter, RateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from points_service.domain.errors import RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)
EXTENSION = "points_ratelimit"


@dataclass
class RateLimits:
    """One app's counts: where they are kept, how a window is counted, and whether limits apply at all."""
    storage: Storage
    strategy: RateLimiter
    enabled: bool = True


def client_address() -> str:
    """The client's address: behind ``PROXY_COUNT`` trusted proxies, ProxyFix has put it here."""
    return request.remote_addr or "unknown"


def init_app(app) -> None:
    """The app's storage and strategy (``RATELIMIT_STORAGE_URI``, ``RATELIMIT_STRATEGY``), and ProxyFix for the
    configured number of proxies. A malformed limit or an unknown strategy stops the start, not a request."""
    for name in app.config:
        if name.startswith("RATELIMIT_") and name.endswith(("_PER_IP", "_PER_OPENID", "_PER_MEMBER", "_PER_USER")):
            _items(app.config[name])
    app.extensions[EXTENSION] = rate_limits(app.config)
    if proxies := app.config.get("PROXY_COUNT", 0):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def rate_limits(config) -> RateLimits:
    """The storage ``RATELIMIT_STORAGE_URI`` names, built with ``RATELIMIT_STORAGE_OPTIONS``, and its strategy."""
    storage = storage_from_string(config.get("RATELIMIT_STORAGE_URI") or "memory://",
                                  **config.get("RATELIMIT_STORAGE_OPTIONS", {}))
    strategy = STRATEGIES[config.get("RATELIMIT_STRATEGY", "moving-window")]
    return RateLimits(storage, strategy(storage), config.get("RATELIMIT_ENABLED", True))


def reset(app) -> None:
    """Forget every count (tests start from zero)."""
    app.extensions[EXTENSION].storage.reset()


@cache
def _items(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


def _digest(*parts: object) -> str:
    secret = str(current_app.config.get("SECRET_KEY") or "").encode()[:64]
    text = "\x1f".join(str(part) for part in parts).encode()
    return hashlib.blake2b(text, key=secret, digest_size=12).hexdigest()


def _limiter() -> RateLimits | None:
    limiter = current_app.extensions.get(EXTENSION)
    return limiter if limiter is not None and limiter.enabled else None


def hit(setting: str, *identity: object) -> None:
    """Count one request against the limits named by ``current_app.config[setting]`` for ``identity``;
    raise ``RateLimited`` (429) with the seconds until the next one is allowed when one is exceeded."""
    limiter = _limiter()
    if limiter is None:
        return
    keys = (current_app.config.get("RATELIMIT_KEY_PREFIX", ""), setting.lower(), _digest(*identity))
    for item in _items(current_app.config[setting]):
        try:
            allowed = limiter.strategy.hit(item, *keys)
            reset_at = None if allowed else limiter.strategy.get_window_stats(item, *keys).reset_time
        except Exception:  # the storage is down: serve rather than refuse everyone
            log.warning("rate-limit storage unavailable; %s not counted", setting, exc_info=True)
            return
        if reset_at is not None:
            raise RateLimited(retry_after=max(1, math.ceil(reset_at - time.time())))


def by_address() -> tuple[str]:
    return (client_address(),)


def by_account() -> tuple[int]:
    """The signed-in account (``login_required`` has loaded it): a member's check-ins and reports, a user's
    uploads."""
    return (g.principal.user_id,)


def limit(setting: str, identity: Callable[[], tuple]):
    """Decorator: count each call of the view against ``setting`` for ``identity()`` before the view runs."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            hit(setting, *identity())
            return view(*args, **kwargs)

        return wrapper

    return decorator


class SignInUnavailable(ServiceUnavailable):
    message = "登录服务暂时不可用，请稍后再试"


def _storage_errors(storage: Storage) -> tuple[type[Exception], ...]:
    """What the storage raises when it is unreachable or does not answer in time (redis-py's RedisError covers
    refused connections and socket timeouts), and the library's wrapper for it."""
    errors = storage.base_exceptions
    return (StorageError, *(errors if isinstance(errors, tuple) else (errors,)))


def _refused_without_storage(method):
    """The lockout cannot be read or written: refuse the sign-in (503) rather than let it through unguarded."""

    @wraps(method)
    def wrapper(self: LoginThrottle, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except self._errors as exc:
            log.warning("rate-limit storage unavailable; password sign-in refused", exc_info=True)
            raise SignInUnavailable() from exc

    return wrapper


class LoginThrottle:
    """Failure counts and timed marks for the sign-in lockout, kept in the rate-limit storage (shared by every
    worker in production). Identities are hashed like every other key. Without a limiter (rate limits
    switched off) nothing is counted and nothing is locked. When the storage fails, every method raises
    ``SignInUnavailable``."""

    def __init__(self, limiter: RateLimits | None, prefix: str) -> None:
        self._storage = limiter.storage if limiter is not None else None
        self._window = MovingWindowRateLimiter(self._storage) if self._storage is not None else None
        self._errors = _storage_errors(self._storage) if self._storage is not None else ()
        self._prefix = prefix

    @classmethod
    def current(cls) -> LoginThrottle:
        return cls(_limiter(), current_app.config.get("RATELIMIT_KEY_PREFIX", ""))

    def _keys(self, kind: str, identity: tuple) -> tuple[str, str, str]:
        return (self._prefix, f"login-{kind}", _digest(*identity))

    @_refused_without_storage
    def count(self, item: RateLimitItem, kind: str, *identity: object) -> bool:
        """Count one failure; True when ``identity`` has now used up ``item`` (its count then starts over)."""
        if self._window is None:
            return False
        keys = self._keys(kind, identity)
        self._window.hit(item, *keys)
        if self._window.test(item, *keys):
            return False
        self._window.clear(item, *keys)
        return True

    @_refused_without_storage
    def forget(self, item: RateLimitItem, kind: str, *identity: object) -> None:
        if self._window is not None:
            self._window.clear(item, *self._keys(kind, identity))

    @_refused_without_storage
    def mark(self, kind: str, *identity: object, seconds: int) -> None:
        """Mark ``identity`` for ``seconds`` from now (a lock, a trusted address)."""
        if self._storage is not None:
            key = "/".join(self._keys(kind, identity))
            self._storage.clear(key)
            self._storage.incr(key, seconds)

    @_refused_without_storage
    def marked_for(self, kind: str, *identity: object) -> int | None:
        """Seconds left on ``identity``'s mark, None when it has none."""
        if self._storage is None:
            return None
        key = "/".join(self._keys(kind, identity))
        if self._storage.get(key) <= 0:
            return None
        return max(1, math.ceil(self._storage.get_expiry(key) - time.time()))
