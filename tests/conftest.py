"""Test fixtures. The suite runs on SQLite by default and on PostgreSQL when
POINTS_TEST_DATABASE_URL is set (``make test`` runs both when it can; CI always does)."""

from __future__ import annotations

import copy
import os

import pytest
import sqlalchemy as sa

from config.settings import Testing
from points_service import create_app, ratelimit
from points_service.db import db
from tests.dbutil import reset_database

PG_URL = os.environ.get("POINTS_TEST_DATABASE_URL")


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (row locks, real concurrency)")
    config.addinivalue_line("markers", "fuzz: schemathesis over the OpenAPI document (make fuzz: long profile)")
    config.addinivalue_line("markers", "crash: SIGKILLs a real service or job process (tests/crash, make crash)")


def pytest_report_header(config):
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (in memory)'}"


def pytest_collection_modifyitems(config, items):
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only (set POINTS_TEST_DATABASE_URL); SQLite ignores FOR UPDATE")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


# Each PostgreSQL test run works in its own schema, so parallel runs on one database never collide.
PG_SCHEMA = f"test_run_{os.getpid()}"


def test_settings() -> Testing:
    settings = Testing()
    if PG_URL:
        settings.SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"options": f"-csearch_path={PG_SCHEMA}"}}
    return settings


@pytest.fixture(scope="session")
def _schema_ready():
    """On PostgreSQL, build the schema once per run; tests then truncate between themselves."""
    if not PG_URL:
        yield
        return
    engine = sa.create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    app = create_app(test_settings())
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def _built_app(_schema_ready):
    """One application per test process: building one (routes, the OpenAPI document, the policy file) costs
    about 0.3 s, more than most tests take. Each test still gets an empty database and its own config."""
    return create_app(test_settings())


@pytest.fixture
def app(_built_app):
    app = _built_app
    config, instance_path = copy.deepcopy(dict(app.config)), app.instance_path
    ratelimit.reset(app)  # every test starts with no requests counted
    with app.app_context():
        if PG_URL:
            reset_database()
        else:
            db.create_all()  # the engine was disposed after the last test: a new in-memory database
        yield app
        db.session.remove()
        if PG_URL:
            reset_database()
        db.engine.dispose()
    app.config.clear()
    app.config.update(config)
    app.instance_path = instance_path


@pytest.fixture
def statements(app):
    """The SQL statements the next requests run (BEGIN/ROLLBACK are not statements here)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK")):
            seen.append(statement)
    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", record)


class _Clock:
    """The rate-limit storage's clock, moved by hand: counts and locks expire without waiting."""

    def __init__(self) -> None:
        import time
        self._real, self.now = time, time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def clock(monkeypatch):
    """Move the rate limits' time (memory storage, moving windows, Retry-After) with ``clock.advance(s)``."""
    import limits.storage.memory
    import limits.strategies

    fake = _Clock()
    for module in (limits.storage.memory, limits.strategies, ratelimit):
        monkeypatch.setattr(module, "time", fake)
    return fake


class _TokenClock:
    def __init__(self, monkeypatch) -> None:
        from points_service.db import utcnow
        from points_service.domain.accounts import tokens

        self.now = utcnow()
        monkeypatch.setattr(tokens, "utcnow", lambda: self.now)

    def advance(self, seconds: float) -> None:
        from datetime import timedelta
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def token_clock(monkeypatch):
    """Move the token use cases' clock (``domain/accounts/tokens``) with ``token_clock.advance(s)``: a rotated
    refresh token's retry grace runs out without waiting."""
    return _TokenClock(monkeypatch)
