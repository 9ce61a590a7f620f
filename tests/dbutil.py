"""Resetting the test database between tests (and between Hypothesis examples)."""

from __future__ import annotations

import sqlalchemy as sa

from config.settings import Testing
from points_service import create_app
from points_service.db import db


def reset_database() -> None:
    """Empty every table. On PostgreSQL TRUNCATE (it does not fire the append-only row triggers);
    on SQLite in memory, drop and recreate the schema. Never how the application itself works."""
    db.session.remove()
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(table.name for table in db.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        db.drop_all()
        db.create_all()


def app_on(url: str, **config):
    """An app of the test process on a database of its own at ``url`` (tables created), for tests that run
    other processes (gunicorn, flask commands, pg_dump) against it."""
    settings = Testing()
    settings.SQLALCHEMY_DATABASE_URI = url
    for name, value in config.items():
        setattr(settings, name, value)
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    return app
