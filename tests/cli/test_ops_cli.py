"""``flask ops backup`` and ``flask ops restore-check``: a backup restored into a fresh database has totals
equal to its ledger, boards equal to their rebuild and every append-only trigger; a backup without one fails."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from config import settings as config_settings
from points_service import create_app
from points_service.db import db
from points_service.domain.ledger.credit import award
from tests.conftest import PG_URL
from tests.dbutil import app_on
from tests.factories import make_world
from tests.factories.ledger import local, member_fact, org_fact


@contextlib.contextmanager
def fresh_database(name: str):
    """A PostgreSQL database of its own on the test server (pg_dump dumps databases, not schemas)."""
    admin = sa.create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _seed_points() -> None:
    world = make_world()
    award(member_fact(world["alice"], "member.activity_hour", units=3), at=local(2026, 11, 2, 10))
    award(member_fact(world["bob"], "member.micro_wish"), at=local(2026, 11, 4, 10))
    award(org_fact(world["finance"], "org.project_done"), at=local(2026, 11, 5, 10))


@pytest.fixture
def pg_app():
    with fresh_database(f"points_backup_{os.getpid()}") as url:
        app = app_on(url)
        with app.app_context():
            _seed_points()
            yield app
            db.session.remove()
            db.engine.dispose()


@pytest.mark.postgres
def test_a_postgresql_backup_restores_into_a_fresh_database_with_totals_boards_and_triggers(pg_app, tmp_path):
    runner = pg_app.test_cli_runner()
    dumped = runner.invoke(args=["ops", "backup", "--out", str(tmp_path / "points.dump")])
    assert dumped.exit_code == 0, dumped.output
    assert (tmp_path / "points.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    checked = runner.invoke(args=["ops", "restore-check", "--from", str(tmp_path / "points.dump")])

    assert checked.exit_code == 0, checked.output
    entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entries"))
    assert f": {entries} ledger entries" in checked.output and "totals vs ledger: 0 difference(s)" in checked.output
    assert "append-only triggers missing: none" in checked.output and "ledger UPDATE refused: yes" in checked.output
    admin = sa.create_engine(make_url(PG_URL).set(database="postgres"))
    with admin.connect() as connection:  # the scratch database is gone again
        assert connection.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname LIKE 'points_restore_check_%'"
                                         " AND datname NOT IN (SELECT datname FROM pg_stat_activity)")) == 0
    admin.dispose()


@pytest.mark.postgres
def test_a_backup_of_a_database_that_lost_an_append_only_trigger_fails_its_restore_check(pg_app, tmp_path):
    db.session.execute(sa.text("DROP TRIGGER ledger_entries_no_update_delete ON ledger_entries"))
    db.session.commit()
    runner = pg_app.test_cli_runner()
    assert runner.invoke(args=["ops", "backup", "--out", str(tmp_path / "points.dump")]).exit_code == 0

    checked = runner.invoke(args=["ops", "restore-check", "--from", str(tmp_path / "points.dump")])

    assert checked.exit_code == 1
    assert "missing: ledger_entries_no_update_delete" in checked.output and "refused: NO" in checked.output


def test_a_sqlite_backup_uses_the_online_backup_and_passes_the_same_check(tmp_path):
    app = app_on(f"sqlite:///{tmp_path / 'live.sqlite'}")
    with app.app_context():
        _seed_points()
        runner = app.test_cli_runner()
        dumped = runner.invoke(args=["ops", "backup", "--out", str(tmp_path / "copy.sqlite")])
        checked = runner.invoke(args=["ops", "restore-check", "--from", str(tmp_path / "copy.sqlite")])
        db.session.remove()
        db.engine.dispose()
    assert dumped.exit_code == 0, dumped.output
    assert checked.exit_code == 0 and "totals vs ledger: 0 difference(s)" in checked.output, checked.output



def test_a_sqlite_backup_of_a_missing_database_file_fails_and_creates_nothing(tmp_path):
    missing = tmp_path / "moved-away.sqlite"  # a mistyped or moved database path
    app = create_app(_sqlite_settings(f"sqlite:///{missing}"))

    dumped = app.test_cli_runner().invoke(args=["ops", "backup", "--out", str(tmp_path / "copy.sqlite")])

    assert dumped.exit_code == 1, dumped.output
    assert "backup written" not in dumped.output and "cannot be opened" in dumped.output
    assert not missing.exists() and not (tmp_path / "copy.sqlite").exists()


def test_a_sqlite_backup_copies_the_database_the_service_uses_when_its_path_is_relative(tmp_path, monkeypatch):
    # Flask-SQLAlchemy reads a relative SQLite path in the instance folder, wherever the command is run from.
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda _app: str(tmp_path / "instance"))
    app = app_on("sqlite:///live.sqlite")
    with app.app_context():
        _seed_points()
        db.session.commit()
        entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entries"))
        db.session.remove()
        db.engine.dispose()
    monkeypatch.chdir(tmp_path)

    dumped = app.test_cli_runner().invoke(args=["ops", "backup", "--out", str(tmp_path / "copy.sqlite")])

    assert dumped.exit_code == 0, dumped.output
    assert not (tmp_path / "live.sqlite").exists()
    copy = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copy.execute("SELECT count(*) FROM ledger_entries").fetchone()[0] == entries > 0
    copy.close()


def _sqlite_settings(url: str) -> config_settings.Testing:
    settings = config_settings.Testing()
    settings.SQLALCHEMY_DATABASE_URI = url
    return settings


def test_a_sqlite_restore_check_leaves_no_copy_of_the_database_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    app = app_on(f"sqlite:///{tmp_path / 'live.sqlite'}")
    with app.app_context():
        _seed_points()
        runner = app.test_cli_runner()
        runner.invoke(args=["ops", "backup", "--out", str(tmp_path / "copy.sqlite")])
        checked = runner.invoke(args=["ops", "restore-check", "--from", str(tmp_path / "copy.sqlite")])
        db.session.remove()
        db.engine.dispose()

    assert checked.exit_code == 0, checked.output
    assert list((tmp_path / "scratch").iterdir()) == []  # the copy held every member's data


def test_a_sqlite_restore_check_of_a_file_that_is_no_backup_fails_with_a_message(tmp_path):
    app = app_on(f"sqlite:///{tmp_path / 'live.sqlite'}")
    (tmp_path / "notes.txt").write_text("not a database")
    sqlite3.connect(tmp_path / "empty.sqlite").close()  # a database, but not the service's
    for name in ("notes.txt", "empty.sqlite"):
        checked = app.test_cli_runner().invoke(args=["ops", "restore-check", "--from", str(tmp_path / name)])

        assert checked.exit_code == 1 and isinstance(checked.exception, SystemExit), (name, checked.exception)
        assert "is not a backup of this service" in checked.output, checked.output
