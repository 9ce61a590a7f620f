"""marshmallow field types for policy documents: exact decimals, strict integers and booleans, keyed maps,
and Chinese error messages (marshmallow's own are English)."""

from __future__ import annotations

import copy
import re
import unicodedata
from decimal import Decimal
from types import MappingProxyType

import marshmallow as ma

NAME_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_MAGNITUDE = Decimal(10) ** 7  # far above any real value; keeps 1e400 out of integer-cent columns

_COMMON = {"required": "缺少必填字段", "null": "不能为空", "validator_failed": "取值无效"}


def one_of(choices) -> ma.validate.OneOf:
    return ma.validate.OneOf(choices, error="应为以下之一：{choices}")


class Text(ma.fields.String):
    """Non-empty text without control or bidi characters (names are shown to members and exported)."""

    default_error_messages = {**_COMMON, "invalid": "应为文本", "invalid_utf8": "不是有效的 UTF-8 文本",
                              "control": "包含不允许的控制字符"}

    def __init__(self, *, max_length: int = 100, validate=None, **kwargs):
        length = ma.validate.Length(min=1, max=max_length, error="长度应为 {min}–{max} 个字符")
        super().__init__(validate=[length, *([validate] if validate else [])], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"} for char in text):
            raise self.make_error("control")
        return text


class Number(ma.fields.Decimal):
    """An exact decimal with at most two places; YAML/JSON numbers and numeric strings are accepted."""

    default_error_messages = {**_COMMON, "invalid": "应为数字", "too_large": "数值过大",
                              "special": "不能是 NaN 或无穷大", "places": "最多保留两位小数",
                              "range": "数值超出允许范围"}

    def _validated(self, value):
        number = super()._validated(value)
        if number.as_tuple().exponent < -2:
            raise self.make_error("places")
        if abs(number) >= MAX_MAGNITUDE:
            raise self.make_error("range")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        # Canonical form: integers as JSON numbers, other decimals as exact strings ("0.95").
        if value is None:
            return None
        return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


class Whole(ma.fields.Integer):
    default_error_messages = {**_COMMON, "invalid": "应为整数", "too_large": "数值过大"}

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


class Flag(ma.fields.Boolean):
    default_error_messages = {**_COMMON, "invalid": "应为 true 或 false"}

    def __init__(self, **kwargs):
        super().__init__(truthy={True}, falsy={False}, **kwargs)


class Nest(ma.fields.Nested):
    default_error_messages = {**_COMMON, "type": "应为映射（键: 值）"}


class Sequence(ma.fields.List):
    default_error_messages = {**_COMMON, "invalid": "应为列表"}


class CodeSet(Sequence):
    """A set of codes written as a list: duplicates are refused, and it is stored sorted."""

    def _deserialize(self, value, attr, data, **kwargs):
        codes = super()._deserialize(value, attr, data, **kwargs)
        if len(set(codes)) != len(codes):
            raise ma.ValidationError("不能重复")
        return frozenset(codes)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else sorted(value)


class KeyedMap(ma.fields.Field):
    """A mapping whose errors are reported under each key (``events.no_show``), unlike ``fields.Dict``."""

    default_error_messages = {**_COMMON, "invalid": "应为映射（键: 值）",
                              "key": "键名不合规范（小写字母、数字、下划线，以点分段）"}

    def __init__(self, values: ma.fields.Field, *, key_pattern: re.Pattern = NAME_KEY, **kwargs):
        super().__init__(**kwargs)
        self.values = values
        self.key_pattern = key_pattern

    def _bind_to_schema(self, field_name, parent):
        super()._bind_to_schema(field_name, parent)
        self.values = copy.deepcopy(self.values)
        self.values._bind_to_schema(field_name, self)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        result, errors = {}, {}
        for key, raw in value.items():
            if not isinstance(key, str) or not self.key_pattern.match(key):
                errors[str(key)] = [self.error_messages["key"]]
                continue
            try:
                result[key] = self.values.deserialize(raw)
            except ma.ValidationError as exc:
                errors[key] = exc.messages
        if errors:
            raise ma.ValidationError(errors)
        return MappingProxyType(result)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return {key: self.values._serialize(item, key, value) for key, item in value.items()}


class StrictSchema(ma.Schema):
    error_messages = {"unknown": "未知字段", "type": "应为映射（键: 值）"}
