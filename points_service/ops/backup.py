"""Backups of the configured database and the proof that one restores.

PostgreSQL: ``pg_dump`` in its custom format (one consistent snapshot, taken while the service runs);
the restore check ``pg_restore``s it into a fresh scratch database on the same server and checks it there.
SQLite: the sqlite3 online backup API; the check opens a copy. The password never appears on a command
line (it goes to the child's ``PGPASSWORD``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from points_service.models.append_only import APPEND_ONLY_TABLES


class BackupFailed(RuntimeError):
    """pg_dump / pg_restore failed, or the restored copy did not pass its checks."""


@dataclass
class RestoreReport:
    database: str
    ledger_entries: int = 0
    totals_differences: int = 0
    boards_differences: int = 0
    missing_triggers: list[str] = field(default_factory=list)
    update_refused: bool = False

    @property
    def ok(self) -> bool:
        return (not self.totals_differences and not self.boards_differences and not self.missing_triggers
                and self.update_refused)


def backup(database_url: str, out: Path) -> Path:
    url = make_url(database_url)
    out.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        _sqlite_backup(url, out)
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={out}",
              f"--dbname={_libpq(url)}"], url)
    return out


def restore_check(app_config: dict, backup_file: Path, keep: bool = False) -> RestoreReport:
    """Restore ``backup_file`` into a fresh database and check it with the service's own code."""
    url = make_url(app_config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        scratch = Path(tempfile.mkdtemp(prefix="points-restore-"))
        try:  # the copy holds every member's data: removed afterwards unless kept for inspection
            shutil.copyfile(backup_file, scratch / "restored.sqlite")
            return _checked(app_config, url.set(database=str(scratch / "restored.sqlite")))
        finally:
            if not keep:
                shutil.rmtree(scratch, ignore_errors=True)
    restored = url.set(database=f"points_restore_check_{uuid.uuid4().hex[:12]}")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{restored.database}"')
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={_libpq(restored)}",
              str(backup_file)], restored)
        return _checked(app_config, restored)
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{restored.database}" WITH (FORCE)')
        admin.dispose()


def _checked(app_config: dict, restored: URL) -> RestoreReport:
    from points_service import create_app
    from points_service.db import db
    from points_service.domain.boards.audit import rebuild_boards
    from points_service.domain.ledger.totals import rebuild_totals

    app = create_app(_Settings(app_config, restored.render_as_string(hide_password=False)))
    report = RestoreReport(database=restored.database or "")
    with app.app_context():
        try:
            report.ledger_entries = db.session.scalar(sa.text("SELECT count(*) FROM ledger_entries"))
            report.totals_differences = len(rebuild_totals(fix=False))
            report.boards_differences = len(rebuild_boards(fix=False))
            db.session.rollback()
            report.missing_triggers = _missing_triggers(db.engine)
            report.update_refused = _update_refused(db.engine)
        except sa.exc.DBAPIError as exc:  # no database, or not the service's (another file, an empty one)
            raise BackupFailed(f"the file is not a backup of this service: {exc.orig}") from exc
        finally:
            db.session.remove()
            db.engine.dispose()
    return report


class _Settings:
    """The running app's settings with the restored database's URL (for ``create_app``)."""

    def __init__(self, config: dict, url: str) -> None:
        self._values = {**config, "SQLALCHEMY_DATABASE_URI": url}
        self.ENV_NAME = config.get("ENV_NAME", "base")

    def as_dict(self) -> dict:
        return dict(self._values)


def _missing_triggers(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            present = set(connection.scalars(sa.text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O'")))
            expected = {f"{table}_no_update_delete" for table in APPEND_ONLY_TABLES}
        else:
            present = set(connection.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            expected = {f"{table}_no_{op}" for table in APPEND_ONLY_TABLES for op in ("update", "delete")}
    return sorted(expected - present)


def _update_refused(engine: sa.Engine) -> bool:
    """Try to change a ledger entry (and roll back): the append-only trigger must refuse."""
    with engine.connect() as connection:
        try:
            connection.execute(sa.text("UPDATE ledger_entries SET reason = reason"))
        except sa.exc.DBAPIError as exc:
            connection.rollback()
            return "append-only" in str(exc)
        connection.rollback()
        count = connection.scalar(sa.text("SELECT count(*) FROM ledger_entries"))
    return count == 0  # an empty ledger updates nothing: check the trigger list instead


def _libpq(url: URL) -> str:
    """A libpq connection URI without the password and the SQLAlchemy driver name."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _run(command: list[str], url: URL) -> None:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    binary = shutil.which(command[0]) or command[0]
    finished = subprocess.run([binary, *command[1:]], env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        raise BackupFailed(f"{command[0]} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")


def _sqlite_backup(url: URL, out: Path) -> None:
    """Read-only: a missing file is an error, never a new empty database backed up as if it were the service's."""
    if not url.database or url.database == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up")
    try:
        source = sqlite3.connect(f"{Path(url.database).resolve().as_uri()}?mode=ro", uri=True)
        source.execute("SELECT count(*) FROM sqlite_master")
    except sqlite3.Error as exc:
        raise BackupFailed(f"the SQLite database {url.database} cannot be opened ({exc})") from exc
    target = sqlite3.connect(out)
    try:
        with target:
            source.backup(target)
    finally:
        source.close()
        target.close()
