"""Read replicas: the read-only views run on a streaming replica when ``POINTS_REPLICA_DATABASE_URL`` is set.

Which reads: the views wrapped in ``db.reads_without_transaction`` (leaderboards, ranks, GET /me/rank,
GET /me, the annual score exports, the console's report pages) — read-only but for an export's audit row,
which is written on the primary, so they may also be re-run. Read-your-writes: after an account's own
successful write (any POST/PUT/PATCH/DELETE answered below 400, its sign-in, binding and logout included), its
reads go to the primary for ``REPLICA_READ_YOUR_WRITES_SECONDS``. The marker lives in the process (no cookie,
no token claim), so the guarantee holds for the worker that served the write; gunicorn's other workers see the
write once the replica has replayed it (its lag, typically well under a second; docs/configuration.md).
Replica down or failing: the read runs on the primary, with a warning, and the replica is left alone for
``REPLICA_RETRY_SECONDS``."""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request

log = logging.getLogger(__name__)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Replica:
    def __init__(self, url: str, window: float, retry: float) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
        self.window, self.retry = window, retry
        self.last_write: dict[int, float] = {}  # user id → monotonic time of his last write in this process
        self.down_until = 0.0
        self.lock = threading.Lock()

    def wrote(self, user_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.last_write[user_id] = now
            if len(self.last_write) > 10_000:  # forget the markers whose window is over
                self.last_write = {u: t for u, t in self.last_write.items() if now - t < self.window}

    def serves(self, user_id: int | None) -> bool:
        now = time.monotonic()
        if now < self.down_until:
            return False
        return user_id is None or now - self.last_write.get(user_id, -self.window) >= self.window

    def failed(self, exc: Exception) -> None:
        from points_service.db import first_line  # db routes through this module: imported when needed

        self.down_until = time.monotonic() + self.retry
        log.warning("read replica unavailable, reading from the primary for %.0f s: %s", self.retry,
                    first_line(exc))


def init_app(app) -> None:
    url = app.config.get("REPLICA_DATABASE_URL")
    if not url:
        return
    app.extensions["points_replica"] = Replica(url, float(app.config["REPLICA_READ_YOUR_WRITES_SECONDS"]),
                                               float(app.config["REPLICA_RETRY_SECONDS"]))

    @app.after_request
    def remember_own_writes(response):
        principal = g.get("principal")
        if request.method in _WRITES and response.status_code < 400 and principal is not None:
            app.extensions["points_replica"].wrote(principal.user_id)
        return response


def signed_in(access_token: str) -> None:
    """A view that signs an account in, binds it or refreshes its tokens has written for it, with no principal
    on ``g`` (called once that write is committed): the account the new access token names reads on the primary
    like after any of its writes. The replica may not hold the account yet (a binding creates it) nor its token
    version (a logout moves it on), and would refuse the new token."""
    if current_app.extensions.get("points_replica") is not None:
        from flask_jwt_extended import decode_token

        wrote_as(decode_token(access_token)["sub"])


def wrote_as(subject: str) -> None:
    """``signed_in`` by token subject (``u:{id}``; an unbound WeChat identity's ``w:{id}`` reads nothing here)."""
    replica = current_app.extensions.get("points_replica")
    if replica is not None and subject.startswith("u:") and subject[2:].isascii() and subject[2:].isdigit():
        replica.wrote(int(subject[2:]))


def current_replica() -> Replica | None:
    """The replica this request's reads may use, or None (none configured, down, or the account just wrote)."""
    if not has_request_context():
        return None
    replica = current_app.extensions.get("points_replica")
    if replica is None or not replica.serves(_requesting_user()):
        return None
    return replica


def _requesting_user() -> int | None:
    """The account named by the request's access token (checked again, fully, by ``login_required``), else the
    console's signed-in user (read on the primary by the console's ``before_request``)."""
    from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request

    try:
        verify_jwt_in_request(optional=True)
        identity = get_jwt_identity()
    except Exception:  # an invalid token: login_required answers 401 after us
        return None
    if isinstance(identity, str) and identity.startswith("u:") and identity[2:].isascii() and identity[2:].isdigit():
        return int(identity[2:])
    principal = g.get("principal") if identity is None else None
    return principal.user_id if principal is not None else None
