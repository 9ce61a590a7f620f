"""The committed Alembic migrations build exactly the schema the models describe, triggers included."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config import settings as config_settings
from points_service import create_app
from points_service.db import db, utcnow
from points_service.domain.notifications.reminders import remind_activities, reminder_key
from points_service.models import InboxMessage, Signup
from tests.conftest import PG_URL
from tests.factories import make_world
from tests.factories.activities import make_activity

BEFORE_PAIRINGS = "f2c8d4a6b913"
BEFORE_REMINDER_STARTS = "c4d9e2a7f613"


@pytest.fixture
def migrated_app(tmp_path):
    yield from _app_migrated_to("head", tmp_path)


@pytest.fixture
def app_before_pairings(tmp_path):
    yield from _app_migrated_to(BEFORE_PAIRINGS, tmp_path)


@pytest.fixture
def app_before_reminder_starts(tmp_path):
    yield from _app_migrated_to(BEFORE_REMINDER_STARTS, tmp_path)


def _app_migrated_to(revision: str, tmp_path):
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
        flask_migrate.upgrade(revision=revision)
        yield app
        db.session.remove()
        db.engine.dispose()
    if schema:
        with sa.create_engine(PG_URL).begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def _expression_indexes() -> set[str]:
    """Indexes with an expression column (the boards' ``score DESC``), which SQLite cannot reflect."""
    return {index.name for table in db.metadata.tables.values() for index in table.indexes
            if any(not isinstance(expr, sa.Column) for expr in index.expressions)}


def _index_name(difference) -> str | None:
    return difference[1].name if difference[0] in ("add_index", "remove_index") else None


def test_migrations_match_the_models(migrated_app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    if db.engine.dialect.name == "sqlite":  # compared in full on PostgreSQL, which CI always runs too
        unreflectable = _expression_indexes()
        differences = [diff for diff in differences if _index_name(diff) not in unreflectable]
    assert differences == []


def test_the_expression_indexes_exist_after_migrating(migrated_app):
    existing = {index["name"] for index in sa.inspect(db.engine).get_indexes("board_scores")}
    assert _expression_indexes() <= existing and "ix_board_scores_rank" in existing


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


@pytest.mark.postgres
def test_the_ledger_subject_index_carries_points_so_one_subjects_sums_are_index_only(migrated_app):
    definition = db.session.scalar(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_ledger_subject_time' "
                                           "AND schemaname = current_schema()"))
    assert definition.endswith("(subject_type, subject_id, ledger, credited_at) INCLUDE (points)")


def test_pending_reports_and_records_have_partial_indexes_for_the_home_screens_count(migrated_app):
    for table in ("reports", "records"):
        name = f"ix_{table}_pending_subject"
        if db.engine.dialect.name == "postgresql":
            definition = db.session.scalar(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :name "
                                                   "AND schemaname = current_schema()"), {"name": name})
            assert definition.endswith("(subject_type, subject_id) WHERE ((status)::text = 'pending'::text)")
        else:
            definition = db.session.scalar(sa.text("SELECT sql FROM sqlite_master WHERE name = :name"), {"name": name})
            assert definition.endswith("(subject_type, subject_id) WHERE status = 'pending'")


def test_the_home_screens_pending_count_repeats_the_index_predicate_literally():
    """A bound parameter (``status = $1``) would keep a prepared statement's generic plan off the partial index."""
    from points_service.domain.ledger.reading import _home_statement

    sql = str(_home_statement(True, True).compile(dialect=sa.dialects.postgresql.dialect()))
    assert sql.count("status = 'pending'") == 2


def test_the_pairings_migration_opens_one_pairing_per_paired_organization(app_before_pairings):
    db.session.execute(sa.text(
        "INSERT INTO regions (id, code, name, level, path) VALUES (1, 'C', '市', 'city', '/1/'), "
        "(2, 'N', '北门社区', 'community', '/1/2/')"))
    db.session.execute(sa.text(
        "INSERT INTO organizations (id, code, name, kind, path, paired_community_id) VALUES "
        "(1, 'D1', '财政局党委', 'department', '/1/', 2), (2, 'D2', '教育局党委', 'department', '/2/', NULL), "
        "(3, 'B1', '第一支部', 'branch', '/1/3/', NULL)"))
    db.session.commit()
    flask_migrate.upgrade()
    rows = db.session.execute(sa.text("SELECT organization_id, community_id, valid_from, valid_to FROM pairings"))
    [(organization_id, community_id, valid_from, valid_to)] = rows.all()
    assert (organization_id, community_id, valid_to) == (1, 2, None)
    assert str(valid_from).startswith("2000-01-01")  # before any period: earlier awards keep their districts


def test_reminders_sent_for_activities_still_to_come_are_keyed_by_their_start_and_not_sent_again(
        app_before_reminder_starts):
    world = make_world()
    coming, past = (make_activity(world["north"], utcnow() + timedelta(hours=hours)) for hours in (20, -30))
    for activity in (coming, past):
        db.session.add(Signup(activity_id=activity.id, member_id=world["alice"].id))
        db.session.add(InboxMessage(member_id=world["alice"].id, event="activity_reminder", title="活动即将开始",
                                    body="", source_key=f"activity:{activity.id}:reminder"))
    db.session.commit()
    flask_migrate.upgrade()

    keys = set(db.session.scalars(sa.select(InboxMessage.source_key)))
    assert keys == {reminder_key(coming.id, coming.starts_at), f"activity:{past.id}:reminder"}
    assert remind_activities() == {"reminded": 0}


def test_the_retention_purges_find_their_rows_by_index(migrated_app):
    """The daily ``retention`` job's batches search by age (docs/jobs.md): without these indexes the last search of
    each purge, which finds nothing, walks the rest of the table by primary key."""
    inspector = sa.inspect(db.engine)
    for table, name, columns in (("idempotency_keys", "ix_idempotency_keys_created_at", ["created_at"]),
                                 ("notification_deliveries", "ix_notification_deliveries_updated_at", ["updated_at"])):
        indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes(table)}
        assert indexes.get(name) == columns, indexes
