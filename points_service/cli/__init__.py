"""Operator commands, one module per area; ``flask --help`` lists them."""

from __future__ import annotations

from points_service.cli.boards import boards_cli
from points_service.cli.demo import demo_cli
from points_service.cli.exports import annual_cli, export_cli
from points_service.cli.jobs import jobs_cli
from points_service.cli.notifications import notifications_cli
from points_service.cli.ops import ops_cli
from points_service.cli.points import points_cli
from points_service.cli.roster import roster_cli
from points_service.cli.users import users_cli

COMMAND_GROUPS = [users_cli, demo_cli, roster_cli, points_cli, jobs_cli, annual_cli, export_cli, boards_cli,
                  notifications_cli, ops_cli]


def register_commands(app) -> None:
    for group in COMMAND_GROUPS:
        app.cli.add_command(group)
