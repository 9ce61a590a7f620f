"""``flask notifications deliver``: one delivery run now (what the every-minute job does), and a summary."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from points_service.domain.notifications.delivery import deliver_due
from points_service.domain.notifications.report import state_counts

notifications_cli = AppGroup("notifications", help="WeChat subscribe messages and the in-app inbox.")


@notifications_cli.command("deliver")
@click.option("--limit", type=click.IntRange(1, 100_000), default=None, help="At most this many rows.")
def deliver_command(limit):
    """Send the due outbox rows once (pending, or interrupted mid-send past their lease)."""
    counts = deliver_due(limit=limit)
    click.echo(" ".join(f"{name}={value}" for name, value in counts.items()))


@notifications_cli.command("status")
def status_command():
    """Outbox rows by state."""
    for state, count in state_counts().items():
        click.echo(f"{state:18} {count}")
