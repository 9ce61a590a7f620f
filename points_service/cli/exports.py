"""``flask annual settle --year Y`` and ``flask export annual --year Y --subject S --format F --out PATH``.

Both act as the operator (no user): the settlement's ``settled_by`` is empty and the export's audit row
says ``via: cli``. The file is built by the same row builder as the API and the annual job.
"""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from points_service.db import db
from points_service.domain.annual.settlement import SYSTEM, settle_year
from points_service.domain.errors import ServiceError
from points_service.domain.exports.files import FORMATS, write_export_file
from points_service.models import SubjectType

annual_cli = AppGroup("annual", help="Annual settlement (年度结算).")
export_cli = AppGroup("export", help="HR exports (人事导出).")


@annual_cli.command("settle")
@click.option("--year", type=int, required=True, help="The year to settle, e.g. 2026 (after it has ended).")
def settle_command(year):
    """Freeze the year's statements (refused if already settled)."""
    try:
        settlement = settle_year(SYSTEM, year)
    except ServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"settled {year}: members={settlement.member_count} organizations={settlement.organization_count} "
               f"policy_version={settlement.policy_version} checksum={settlement.checksum}")


@export_cli.command("annual")
@click.option("--year", type=int, required=True)
@click.option("--subject", type=click.Choice([str(s) for s in SubjectType]), default="member", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="xlsx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True,
              help="The file to write (its folder must exist).")
def export_annual_command(year, subject, fmt, out):
    """Write the whole city's settled scores of one subject type to a CSV or XLSX file."""
    if not out.parent.is_dir():  # checked before any row is read: the writers would fail after the work
        raise click.BadParameter(f"the folder {out.parent} does not exist", param_hint="--out")
    try:
        count = write_export_file(year, SubjectType(subject), fmt, out, via="cli")
    except ServiceError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    except (OSError, sa.exc.SQLAlchemyError) as exc:  # a database error mid-export, a full disk
        db.session.rollback()
        raise _failed(out, exc) from exc
    try:
        db.session.commit()  # the audit row: a file whose export is not audited is not left behind
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        out.unlink(missing_ok=True)
        raise _failed(out, exc) from exc
    click.echo(f"wrote {count} rows to {out}")


def _failed(out: Path, exc: Exception) -> click.ClickException:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return click.ClickException(f"export failed, nothing written to {out}: {reason}")
