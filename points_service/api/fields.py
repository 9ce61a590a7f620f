"""Field types shared by input schemas: clean Chinese text, normalized phones, exact points, instants."""

from __future__ import annotations

import unicodedata

import marshmallow as ma
from flask import g
from werkzeug.routing import IntegerConverter

from points_service.db import MAX_ROW_ID  # re-exported: the API modules take it from here
from points_service.domain.ledger.reading import item_names
from points_service.domain.periods import OUTSIDE_YEARS, BadPeriod, parse_period, to_rfc3339, within_years
from points_service.domain.phones import BadPhone, normalize_phone


def _is_forbidden_char(char: str) -> bool:
    # Control (Cc), format incl. bidi overrides (Cf), surrogates and private use are refused;
    # characters outside the BMP (生僻字 such as 𠮷) and the middle dot · are kept exactly.
    return unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"}


class CleanString(ma.fields.String):
    """A string with no control or bidi characters, stripped, within ``max_length`` characters."""

    def __init__(self, *, max_length: int = 200, min_length: int = 1, validate=None, **kwargs):
        extra = [validate] if callable(validate) else list(validate or [])
        super().__init__(validate=[ma.validate.Length(min=min_length, max=max_length), *extra], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if any(_is_forbidden_char(char) for char in text):
            raise ma.ValidationError("包含不允许的控制字符")
        return text


class Phone(ma.fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_phone(super()._deserialize(value, attr, data, **kwargs))
        except BadPhone as exc:
            raise ma.ValidationError(str(exc)) from exc


class PointsField(ma.fields.Decimal):
    """Exact points: at most two decimals, serialized as a JSON number."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).setdefault("example", 5)
        super().__init__(places=None, allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ma.ValidationError("不是有效的数字")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number.as_tuple().exponent < -2:
            raise ma.ValidationError("积分最多保留两位小数")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        # JSON numbers: ints stay ints, others keep their two decimals exactly (Flask encodes Decimal).
        return int(value) if value == value.to_integral_value() else value


class ItemName(ma.fields.String):
    """The Chinese name of the object's ``item_code``: the one it carries when the use case that wrote it
    knew it, or else looked up once per request rather than once per row."""

    def get_value(self, obj, attr, accessor=None, default=ma.missing):
        return obj.item_code

    def _serialize(self, value, attr, obj, **kwargs):
        if getattr(obj, "item_name", None):
            return obj.item_name
        if "item_names" not in g:
            g.item_names = item_names()
        return g.item_names.get(value, value)


def in_years(value):
    """A day or an instant of a request, refused (422) outside the years the service keys periods by."""
    if not within_years(value):
        raise ma.ValidationError(OUTSIDE_YEARS)
    return value


class Instant(ma.fields.AwareDateTime):
    """RFC 3339 with an offset in and out; emitted in Asia/Shanghai (+08:00)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return in_years(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        return to_rfc3339(value)


class Day(ma.fields.Date):
    """A calendar day (Asia/Shanghai), e.g. 2026-11-01."""

    def _deserialize(self, value, attr, data, **kwargs):
        return in_years(super()._deserialize(value, attr, data, **kwargs))


class PeriodKey(ma.fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        key = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_period(key)
        except BadPeriod as exc:
            raise ma.ValidationError(str(exc)) from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class RowIdConverter(IntegerConverter):
    """The app's ``<int:...>`` converter: a path id beyond any row's range does not match the rule, so it answers
    the same 404 as an id that names nothing (and the OpenAPI document states the bound)."""

    def __init__(self, url_map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ROW_ID,
                 signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits, min, max, signed)


class RowId(ma.fields.Integer):
    """An id in a body or a query: an integer within a row id's range (422 beyond it, never a 500)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", ma.validate.Range(min=1, max=MAX_ROW_ID))
        super().__init__(**kwargs)
