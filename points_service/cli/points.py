"""``flask points rebuild``: prove every maintained total equals the sum of its ledger entries."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from points_service.domain.ledger.totals import rebuild_totals

points_cli = AppGroup("points", help="Ledger maintenance.")


@points_cli.command("rebuild")
@click.option("--fix", is_flag=True, help="Rewrite differing totals from the ledger.")
def rebuild_command(fix):
    """Recompute totals from the ledger and report differences (exit 1 if any remain)."""
    differences = rebuild_totals(fix=fix)
    for difference in differences[:50]:
        click.echo(f"{difference['key']}: stored {difference['stored']} expected {difference['expected']}")
    click.echo(f"{len(differences)} difference(s){' fixed' if fix and differences else ''}")
    if differences and not fix:
        sys.exit(1)
