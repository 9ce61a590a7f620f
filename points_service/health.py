"""/healthz (the process answers) and /readyz (this instance can serve): outside /api/v1, no envelope.

/readyz is what a load balancer asks before it sends an instance traffic. It answers 200 only when
- the database answers and its Alembic revision (``alembic_version``) is the code's head: an instance deployed
  before ``flask db upgrade`` ran (or still running the old code after it) would answer 500s;
- Redis answers a PING, where the rate limits count there (``RATELIMIT_STORAGE_URI`` a Redis URI, limits on: the
  production settings require it). A limit whose storage is down is served uncounted, but the sign-in lockout
  (``LoginThrottle``) reads and writes the same storage and refuses: password sign-in answers 503.
Otherwise 503, each part that is not ready named in ``not_ready`` and with its state.

The head is read once at start-up from ``migrations/versions`` (the files' ``revision`` and ``down_revision``,
parsed, not imported); a request reads the ``alembic_version`` row(s) on an autocommit connection (no BEGIN: on
SQLite it does not queue behind a writer's lock) and, when Redis is required, sends one PING with a short timeout.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, current_app
from limits.storage import Storage, storage_from_string

from config.settings import SHARED_LIMIT_STORAGES
from points_service.db import MIGRATIONS_DIR, db

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__)
EXTENSION = "points_readiness"
_VERSION_QUERY = sa.text("SELECT version_num FROM alembic_version")


@dataclass(frozen=True)
class Revisions:
    """The migration graph as far as readiness needs it: its head(s) and every revision it knows."""
    heads: frozenset[str]
    known: frozenset[str] = field(default_factory=frozenset)


def migration_revisions(versions_dir: Path = MIGRATIONS_DIR / "versions") -> Revisions:
    """Each migration file's module-level ``revision`` and ``down_revision`` (a string, a tuple for a merge, or
    None), read with ``ast`` (nothing is imported): the heads are the revisions no other revision follows."""
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions_dir.glob("*.py")):
        values = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value:
                values[target.id] = ast.literal_eval(node.value)
        if "revision" in values:
            down = values.get("down_revision")
            parents[values["revision"]] = tuple(down) if isinstance(down, (tuple, list)) else (down,) if down else ()
    followed = {parent for down in parents.values() for parent in down}
    return Revisions(frozenset(parents) - followed, frozenset(parents))


@dataclass
class Readiness:
    revisions: Revisions
    redis: Storage | None  # a storage of its own with short timeouts, None when Redis is not required


def redis_required(config) -> bool:
    """Rate limits on and counted in Redis (production requires both): the sign-in lockout needs Redis."""
    return bool(config.get("RATELIMIT_ENABLED", True)) and \
        str(config.get("RATELIMIT_STORAGE_URI") or "").startswith(SHARED_LIMIT_STORAGES)


def init_app(app) -> None:
    redis = None
    if redis_required(app.config):
        timeout = app.config.get("READINESS_TIMEOUT_SECONDS", 1.0)
        options = {**app.config.get("RATELIMIT_STORAGE_OPTIONS", {}),
                   "socket_connect_timeout": timeout, "socket_timeout": timeout}
        redis = storage_from_string(app.config["RATELIMIT_STORAGE_URI"], **options)
    app.extensions[EXTENSION] = Readiness(migration_revisions(), redis)
    app.register_blueprint(blp)


@blp.get("/healthz")
def healthz():
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    readiness: Readiness = current_app.extensions[EXTENSION]
    body = {"status": "ok", **_database(readiness.revisions), "redis": _redis(readiness.redis)}
    not_ready = [part for part in ("database", "schema", "redis") if body[part] not in ("ok", "not_used")]
    if not_ready:
        return {**body, "status": "unavailable", "not_ready": not_ready}, 503
    return body


def _database(revisions: Revisions) -> dict:
    """``database``: ok or unreachable; ``schema``: ok, missing (no ``alembic_version`` or no row in it), behind
    (a revision before the code's head), unknown_revision (one this code does not know: upgraded by newer code),
    or unknown (the database did not answer). With a schema that is not ok, both revisions."""
    try:
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            try:
                current = frozenset(connection.execute(_VERSION_QUERY).scalars())
            except sa.exc.DBAPIError:
                connection.execute(sa.text("SELECT 1"))  # no such table, or the database itself?
                current = frozenset()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("readiness: the database did not answer: %s", type(exc).__name__)
        return {"database": "unreachable", "schema": "unknown"}
    if current == revisions.heads:
        return {"database": "ok", "schema": "ok"}
    state = "missing" if not current else "behind" if current <= revisions.known else "unknown_revision"
    return {"database": "ok", "schema": state, "schema_revision": ",".join(sorted(current)) or None,
            "code_revision": ",".join(sorted(revisions.heads))}


def _redis(storage: Storage | None) -> str:
    if storage is None:
        return "not_used"
    if storage.check():  # PING; False (never an exception) when Redis does not answer within the timeout
        return "ok"
    log.warning("readiness: Redis (the rate-limit storage) did not answer")
    return "unreachable"
