"""``flask roster import KIND PATH [--dry-run]``: load a roster file as the operator.

The command runs with administrator rights and no console user: its audit rows have no actor, the
operator's shell being the accountable party. Exit status 0 when the file was valid (and, unless
``--dry-run``, written), 1 when it was refused.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from points_service.cli.operator import OPERATOR
from points_service.domain.errors import ServiceError
from points_service.domain.roster.rows import KINDS

roster_cli = AppGroup("roster", help="Roster files: regions, organizations, members.")


@roster_cli.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report only; write nothing.")
def import_command(kind, path, dry_run):
    """Import a roster file (.xlsx or .csv, Chinese headers; see docs/templates/)."""
    from points_service.domain.roster.importing import ImportInvalid, import_roster

    try:
        report = import_roster(OPERATOR, kind, path.read_bytes(), path.name, dry_run=dry_run, max_rows=None,
                               phone_key=current_app.config["PHONE_HASH_KEY"])
    except ImportInvalid as exc:
        for error in exc.data["errors"]:
            column = f" [{error['field']}]" if error["field"] else ""
            click.echo(f"第 {error['row']} 行{column}: {error['message']}", err=True)
        click.echo(f"refused: {len(exc.data['errors'])} error(s), nothing written", err=True)
        raise click.exceptions.Exit(1) from exc
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    suffix = " (dry run: nothing written)" if dry_run else ""
    click.echo(f"{kind}: created {report.created}, updated {report.updated}, unchanged {report.unchanged}{suffix}")
