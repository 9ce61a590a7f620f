"""``flask boards rebuild``: prove every leaderboard row and histogram equals a rebuild from the totals."""

from __future__ import annotations

import sys
import time

import click
from flask.cli import AppGroup

from points_service.db import db
from points_service.domain.boards.audit import rebuild_boards, rebuild_boards_from_totals

boards_cli = AppGroup("boards", help="Leaderboard maintenance.")


@boards_cli.command("rebuild")
@click.option("--fix", is_flag=True, help="Replace the boards by the rebuild when they differ.")
@click.option("--force", is_flag=True, help="Rebuild set-wise without comparing first (after a bulk load).")
def rebuild_command(fix, force):
    """Compare boards with a set-wise rebuild from point_totals (exit 1 on differences unless --fix)."""
    started = time.monotonic()
    if force:
        rebuild_boards_from_totals()
        db.session.commit()
        click.echo(f"boards rebuilt in {time.monotonic() - started:.1f} s")
        return
    differences = rebuild_boards(fix=fix)
    for difference in differences[:50]:
        click.echo(f"{difference['key']}: stored {difference['stored']} expected {difference['expected']}")
    click.echo(f"{len(differences)} difference(s){' fixed' if fix and differences else ''}")
    if differences and not fix:
        sys.exit(1)
