"""Test fixtures. The suite runs on SQLite by default and on PostgreSQL when
POINTS_TEST_DATABASE_URL is set (``make test`` runs both when it can; CI always does)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from config.settings import Testing
from points_service import create_app
from points_service.db import db

PG_URL = os.environ.get("POINTS_TEST_DATABASE_URL")


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (row locks, real concurrency)")


def pytest_report_header(config):
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (in memory)'}"


def pytest_collection_modifyitems(config, items):
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only (set POINTS_TEST_DATABASE_URL); SQLite ignores FOR UPDATE")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _schema_ready():
    """On PostgreSQL, build the schema once per run; tests then truncate between themselves."""
    if not PG_URL:
        yield
        return
    app = create_app(Testing())
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield


def _truncate_all() -> None:
    names = ", ".join(table.name for table in db.metadata.sorted_tables)
    # TRUNCATE does not fire the append-only row triggers: it is how tests reset, never how the app works.
    db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def app(_schema_ready):
    app = create_app(Testing())
    with app.app_context():
        if PG_URL:
            _truncate_all()
        else:
            db.create_all()
        yield app
        db.session.remove()
        if PG_URL:
            _truncate_all()
        db.engine.dispose()
