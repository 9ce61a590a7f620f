"""/readyz (points_service/health.py): 200 only when the database answers at the code's migration head and, where
rate limits count in Redis, Redis answers; otherwise 503 naming what is not ready. /healthz does not look."""

from __future__ import annotations

import socket
import time

import pytest
import redis
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from config.settings import Development, load_settings
from points_service import create_app
from points_service.db import MIGRATIONS_DIR, db
from points_service.health import migration_revisions, redis_required
from tests.api.test_auth_wechat import PRODUCTION_ENV
from tests.conftest import PG_URL
from tests.conftest import test_settings as settings_for_tests
from tests.dbutil import stamp_head

REDIS_URL = "redis://127.0.0.1:6379/13"
HEADS = migration_revisions().heads
(HEAD,) = HEADS


@pytest.fixture
def migrated(app):
    """The test database as ``flask db upgrade`` leaves it: ``alembic_version`` at the head."""
    stamp_head()
    yield
    with db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def set_version(*revisions: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM alembic_version"))
        for revision in revisions:
            connection.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def app_with(**config):
    """A second app on this run's database (PostgreSQL: the same schema; SQLite: an in-memory one of its own,
    built and stamped here)."""
    other = create_app(_settings(**config))
    if not PG_URL:
        with other.app_context():
            db.create_all()
            stamp_head()
    return other


def _settings(**config):
    settings = settings_for_tests()
    for name, value in config.items():
        setattr(settings, name, value)
    return settings


def test_the_head_is_read_from_the_migration_files_as_alembic_reads_it():
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    assert migration_revisions().heads == frozenset(scripts.get_heads())
    assert migration_revisions().known == frozenset(script.revision for script in scripts.walk_revisions())


def test_ready_when_the_database_is_at_the_head(migrated, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "schema": "ok", "redis": "not_used"}
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_the_readiness_query_reads_alembic_version_only(migrated, client, statements):
    client.get("/readyz")
    assert [s.strip() for s in statements] == ["SELECT version_num FROM alembic_version"]


def test_a_schema_behind_the_code_is_not_ready(migrated, client):
    earlier = sorted(migration_revisions().known - HEADS)[0]
    set_version(earlier)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok", "schema": "behind", "redis": "not_used",
                                   "schema_revision": earlier, "code_revision": HEAD, "not_ready": ["schema"]}
    assert client.get("/healthz").status_code == 200


def test_a_revision_the_code_does_not_know_is_not_ready(migrated, client):
    set_version("0123456789ab")  # upgraded by newer code: this instance runs the old one
    body = client.get("/readyz").get_json()
    assert body["schema"] == "unknown_revision" and body["not_ready"] == ["schema"]


@pytest.mark.parametrize("how", ["no row", "no table"])
def test_a_database_never_migrated_is_not_ready(migrated, client, how):
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM alembic_version" if how == "no row" else "DROP TABLE alembic_version"))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["schema"] == "missing" and body["schema_revision"] is None
    assert body["not_ready"] == ["schema"]


def test_an_unreachable_database_is_named(tmp_path):
    other = create_app(_settings(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}",
                                 SQLALCHEMY_ENGINE_OPTIONS={}))
    response = other.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unreachable", "schema": "unknown",
                                   "redis": "not_used", "not_ready": ["database", "schema"]}


def test_an_unreachable_redis_is_named_where_rate_limits_count_there(migrated):
    other = app_with(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}/13")
    started = time.monotonic()
    response = other.test_client().get("/readyz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok", "schema": "ok",
                                   "redis": "unreachable", "not_ready": ["redis"]}


def test_a_redis_that_answers_is_ready(migrated):
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc})")
    other = app_with(RATELIMIT_STORAGE_URI=REDIS_URL)
    response = other.test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["redis"] == "ok"


def test_redis_is_not_asked_when_rate_limits_are_off(migrated):
    other = app_with(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}/13", RATELIMIT_ENABLED=False)
    response = other.test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["redis"] == "not_used"


def test_production_requires_redis_and_development_does_not(monkeypatch):
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POINTS_WECHAT_DEV_LOGIN", raising=False)
    assert redis_required(load_settings("production").as_dict())
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name)
    assert not redis_required(load_settings("development").as_dict())


def test_development_is_ready_without_redis(tmp_path):
    settings = Development()
    settings.SECRET_KEY, settings.PHONE_HASH_KEY = "d" * 48, "development-phone-key"  # nothing written
    settings.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'points.db'}"
    other = create_app(settings)
    with other.app_context():
        db.create_all()
        stamp_head()
        db.engine.dispose()
    response = other.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "schema": "ok", "redis": "not_used"}


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's locking")
def test_on_sqlite_readiness_does_not_wait_behind_a_writer(tmp_path):
    other = create_app(_settings(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'points.db'}"))
    with other.app_context():
        db.create_all()
        stamp_head()
        writer = db.engine.connect()
        writer.begin()  # BEGIN IMMEDIATE: holds the write lock until it ends
        try:
            started = time.monotonic()
            response = other.test_client().get("/readyz")
            assert response.status_code == 200 and time.monotonic() - started < 1
        finally:
            writer.rollback()
            writer.close()
            db.engine.dispose()
