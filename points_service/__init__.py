"""points_service: 双报到双积分 for on-duty Party members and their organizations."""

from __future__ import annotations

from flask import Flask

from config import load_settings


def create_app(settings=None) -> Flask:
    """Build the app. Reads like a table of contents: each subsystem registers itself."""
    app = Flask(__name__, instance_relative_config=True)
    configure(app, settings or load_settings())

    from points_service import cli, db, health, ratelimit, requests, transactions
    from points_service.api import register_api
    from points_service.api.errors import register_error_handlers
    from points_service.api.security import init_app as init_security
    from points_service.console import register_console
    from points_service.domain.notifications import init_app as init_notifications
    from points_service.domain.policy import init_app as init_policy
    from points_service.jsonio import init_app as init_json

    db.init_app(app)
    transactions.init_app(app)
    init_json(app)
    requests.init_app(app)
    ratelimit.init_app(app)
    init_security(app)
    register_api(app)
    register_error_handlers(app)
    init_policy(app)
    init_notifications(app)
    health.init_app(app)
    register_console(app)
    cli.register_commands(app)
    return app


def configure(app: Flask, settings) -> None:
    from pathlib import Path

    from points_service.api.fields import RowIdConverter
    from points_service.instance import ensure_development_secrets, sqlite_url

    app.config.from_mapping(settings.as_dict())
    app.url_map.converters["int"] = RowIdConverter  # before any rule: every <int:id> is bounded
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if settings.ENV_NAME == "development":
        ensure_development_secrets(app)
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config["SQLALCHEMY_DATABASE_URI"] or sqlite_url(app)
