"""/healthz (the process answers) and /readyz (the database answers): outside /api/v1, no envelope."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from points_service.db import db

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}
