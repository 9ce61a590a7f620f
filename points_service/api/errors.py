"""One error handler for the whole app, so routing 404/405, validation errors, oversized bodies and
crashes all answer in the same envelope with a stable ``code`` and a Chinese ``message``."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import jsonify
from werkzeug.exceptions import HTTPException

from points_service.api.core import envelope
from points_service.db import db, first_line
from points_service.domain.errors import ServiceError

log = logging.getLogger(__name__)

HTTP_ERRORS = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "与当前状态冲突"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "请求内容类型不受支持"),
    422: ("validation_failed", "提交的数据有误"),
    429: ("rate_limited", "请求过于频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


def _respond(status: int, code: str, message: str, data=None, headers=None):
    response = jsonify(envelope(data, code=code, message=message))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def flatten_locations(messages: dict) -> dict:
    """webargs nests field errors under their location ("json", "query"); clients want the fields."""
    errors: dict = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            errors.update(location_errors)
        else:
            errors.setdefault("_schema", []).extend(location_errors)
    return errors


def handle_service_error(error: ServiceError):
    return _respond(error.status, error.code, error.message, error.data, error.headers)


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    code, message = HTTP_ERRORS.get(status, ("http_error", error.name))
    data = None
    extra = getattr(error, "data", None) or {}
    if status == 422 and "messages" in extra:
        data = {"errors": flatten_locations(extra["messages"])}
    headers = dict(extra.get("headers") or {})
    if status == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return _respond(status, code, message, data, headers)


def handle_unexpected(error: Exception):
    log.exception("unhandled error")
    code, message = HTTP_ERRORS[500]
    return _respond(500, code, message)


# PostgreSQL aborts one of two transactions that wait on each other (a deadlock), a serialization failure or a
# lock wait past lock_timeout; SQLite gives up past its busy timeout. The transaction is rolled back whole, so
# the request may simply be sent again.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(error: sa.exc.DBAPIError) -> bool:
    original = error.orig
    return getattr(original, "sqlstate", None) in TRANSIENT_SQLSTATES or "database is locked" in str(original)


def handle_database_error(error: sa.exc.DBAPIError):
    db.session.rollback()  # the failed transaction can only be rolled back
    if not is_transient(error):
        return handle_unexpected(error)
    log.warning("transient database conflict, answered 503: %s", first_line(error.orig))
    # Not "nothing happened": a use case that had committed may have failed reading its answer back.
    return _respond(503, "database_busy", "系统繁忙，请稍后重试", headers={"Retry-After": "1"})


def register_error_handlers(app) -> None:
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(sa.exc.DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
