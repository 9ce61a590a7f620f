"""The API's shared machinery: the response envelope, strict JSON parsing and the Api subclass.

Every JSON response is ``{"code", "message", "data", "request_id"}`` with the real HTTP status; the
mini-program reads both because ``wx.request`` reports success for any status.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import cache

import marshmallow as ma
from flask import g
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request

from points_service.api import messages  # noqa: F401  (Chinese field messages, before any schema exists)
from points_service.domain.errors import ServiceError

MAX_INT_DIGITS = 18
MAX_DECIMAL_EXPONENT = 15
MAX_JSON_DEPTH = 32


class MalformedJSON(ServiceError):
    status, code, message = 400, "malformed_json", "请求体不是合法的 JSON"


class UnsupportedMediaType(ServiceError):
    status, code, message = 415, "unsupported_media_type", "请求内容类型不受支持，请使用 application/json"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("number too large")
    return int(text)


def _parse_decimal(text: str) -> Decimal:
    # Decimals keep points exact from the wire on; absurd magnitudes (1e400) are malformed input.
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError("bad number") from exc
    if not value.is_finite() or abs(value.adjusted()) > MAX_DECIMAL_EXPONENT or len(text) > 40:
        raise ValueError("number out of range")
    return value


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def strict_json_loads(raw: bytes | str):
    """json.loads that refuses NaN/Infinity, huge numbers and deep nesting instead of accepting them."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=_parse_int, parse_float=_parse_decimal
        )
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise MalformedJSON() from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise MalformedJSON("JSON 嵌套层级过深")
    return value


class StrictParser(FlaskParser):
    # Unknown query parameters are refused like unknown body fields: a typo never silently widens a list.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "query": ma.RAISE, "querystring": ma.RAISE}

    def _raw_load_json(self, req):
        if not is_json_request(req):
            if req.content_length or req.get_data(cache=True):
                raise UnsupportedMediaType()
            return webargs_core.missing
        return strict_json_loads(req.get_data(cache=True))


def envelope(data=None, *, code: str = "ok", message: str = "成功") -> dict:
    return {"code": code, "message": message, "data": data, "request_id": g.get("request_id")}


class EnvelopeSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "ok"})
    message = ma.fields.String(metadata={"example": "成功"})
    request_id = ma.fields.String()


@cache
def _envelope_schema(schema: type[ma.Schema], many: bool) -> type[ma.Schema]:
    """The documented shape of a response: the schema under ``data`` (one class per schema)."""
    name = schema.__name__.removesuffix("Schema") + ("List" if many else "") + "Envelope"
    data = ma.fields.List(ma.fields.Nested(schema)) if many else ma.fields.Nested(schema)
    return type(name, (EnvelopeSchema,), {"data": data})


class Blueprint(SmorestBlueprint):
    """A smorest blueprint whose responses (and their documentation) are wrapped in the envelope."""

    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema, *args, **kwargs):
        """As smorest's, with a schema class instantiated once here: given the class, webargs builds a new
        instance (deep-copying its fields) on every request, about 20 µs. A schema keeps no state between
        loads; the OpenAPI document is the same."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    @staticmethod
    def _prepare_response_content(data):
        return envelope(data)

    @staticmethod
    def _make_doc_response_schema(schema):
        if schema is None or isinstance(schema, dict):
            return schema  # a raw OpenAPI schema (a file download) is not enveloped
        return _envelope_schema(schema if isinstance(schema, type) else type(schema),
                                bool(getattr(schema, "many", False)))


class ErrorEnvelopeSchema(ma.Schema):
    """What every error response really is (``api.errors``): the envelope with a string code and, for field
    errors, ``data.errors``; other errors may carry their own details in ``data``."""
    code = ma.fields.String(metadata={"example": "validation_failed"})
    message = ma.fields.String(metadata={"example": "提交的数据有误"})
    data = ma.fields.Raw(allow_none=True, metadata={"description": "null，或 {errors: {...}} 等错误详情"})
    request_id = ma.fields.String(allow_none=True)


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self):
        """Errors are handled app-wide by ``points_service.api.errors`` (routing 404/405 included)."""
