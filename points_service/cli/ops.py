"""``flask ops backup --out FILE`` and ``flask ops restore-check --from FILE`` (docs/hardening.md, backups)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from points_service.db import db
from points_service.ops import BackupFailed, backup, restore_check

ops_cli = AppGroup("ops", help="Operations: backups and their restore check.")


@ops_cli.command("backup")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="The backup file (default: instance/backups/points-<UTC time>.dump).")
def backup_command(out):
    """Back up the configured database (PostgreSQL: pg_dump custom format; SQLite: online backup)."""
    if out is None:
        out = Path(current_app.instance_path) / "backups" / f"points-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump"
    try:
        # The engine's URL, not the setting: Flask-SQLAlchemy reads a relative SQLite path in the instance folder.
        written = backup(db.engine.url.render_as_string(hide_password=False), out)
    except BackupFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"backup written: {written} ({written.stat().st_size} bytes)")


@ops_cli.command("restore-check")
@click.option("--from", "backup_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Keep the scratch database (PostgreSQL) for inspection.")
def restore_check_command(backup_file, keep):
    """Restore a backup into a fresh database and check totals = ledger, boards = rebuild, append-only
    triggers in place (exit 1 if not)."""
    try:
        report = restore_check(dict(current_app.config), backup_file, keep=keep)
    except BackupFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"restored into {report.database}: {report.ledger_entries} ledger entries; "
               f"totals vs ledger: {report.totals_differences} difference(s); "
               f"boards vs rebuild: {report.boards_differences} difference(s); "
               f"append-only triggers missing: {', '.join(report.missing_triggers) or 'none'}; "
               f"ledger UPDATE refused: {'yes' if report.update_refused else 'NO'}")
    click.echo("restore check passed" if report.ok else "restore check FAILED")
    if not report.ok:
        sys.exit(1)
