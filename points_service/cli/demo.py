"""``flask demo ...``: being written."""

from flask.cli import AppGroup

demo_cli = AppGroup("demo")
