"""The committed Alembic migrations build exactly the schema the models describe, triggers included."""

from __future__ import annotations

import os
import uuid

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config import settings as config_settings
from points_service import create_app
from points_service.db import db
from tests.conftest import PG_URL


@pytest.fixture
def migrated_app(tmp_path):
    settings = config_settings.Testing()
    schema = None
    if PG_URL:
        schema = f"migr_{uuid.uuid4().hex[:8]}"
        with sa.create_engine(PG_URL).begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        settings.SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"options": f"-csearch_path={schema}"}}
    else:
        settings.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()
    if schema:
        with sa.create_engine(PG_URL).begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def test_migrations_match_the_models(migrated_app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_migrations_install_the_append_only_guards(migrated_app):
    db.session.execute(sa.text("INSERT INTO audit_log (at, action, result, detail) "
                               "VALUES (CURRENT_TIMESTAMP, 'probe', 'ok', '{}')"))
    db.session.commit()
    for statement in ("UPDATE audit_log SET result = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError):
            db.session.execute(sa.text(statement))
        db.session.rollback()


def test_the_migration_directory_is_the_one_shipped_with_the_package():
    from points_service.db import MIGRATIONS_DIR

    assert os.path.isfile(MIGRATIONS_DIR / "env.py") and any(MIGRATIONS_DIR.glob("versions/*.py"))
