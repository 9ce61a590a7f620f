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
        stamp_head()
    return app


def stamp_head(connection: sa.Connection | None = None) -> None:
    """Record the code's head revision in ``alembic_version``, as ``flask db stamp head`` would: a schema built
    by ``create_all`` is then what ``flask db upgrade`` leaves, and /readyz answers 200 on it."""
    from points_service.health import migration_revisions

    if connection is None:
        with db.engine.begin() as connection:
            return stamp_head(connection)
    connection.execute(sa.text("CREATE TABLE IF NOT EXISTS alembic_version "
                               "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    connection.execute(sa.text("DELETE FROM alembic_version"))
    for head in sorted(migration_revisions().heads):
        connection.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})
