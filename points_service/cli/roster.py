"""``flask roster ...``: being written."""

from flask.cli import AppGroup

roster_cli = AppGroup("roster")
