"""The HTTP API under /api/v1, its OpenAPI document at /api/openapi.json and Swagger UI at /api/docs."""

from __future__ import annotations

from points_service.api import (
    activities,
    admin,
    annual,
    approvals,
    auth,
    boards,
    calendar,
    imports,
    lifecycle,
    market,
    me,
    notifications,
    points,
    policy,
    preview,
    records,
    red_flags,
    reports,
    stars,
    structure,
    uploads,
)
from points_service.api.core import Api

API_PREFIX = "/api/v1"
BLUEPRINTS = [auth.blp, me.blp, structure.blp, points.blp, admin.blp, imports.blp, policy.blp, preview.blp,
              reports.blp, activities.blp, records.blp, approvals.blp, annual.blp,
              stars.blp, red_flags.blp, calendar.blp, boards.blp, market.blp, lifecycle.blp,
              uploads.blp, notifications.blp]

api = Api()


def register_api(app) -> None:
    api.init_app(app, spec_kwargs={
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearerAuth": []}],
    })
    for blueprint in BLUEPRINTS:
        prefix = API_PREFIX + (blueprint.url_prefix or "")
        api.register_blueprint(blueprint, url_prefix=prefix)
