"""Per-request plumbing: a request id on every response and in every audit row."""

from __future__ import annotations

import re
import uuid

from flask import g, request

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")


def init_app(app) -> None:
    @app.before_request
    def assign_request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response
