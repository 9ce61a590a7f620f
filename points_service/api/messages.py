"""Chinese field-error messages for every schema of the API.

marshmallow has no translation hook: its messages are class attributes meant to be overridden, so we set
them once, on import — before any schema's fields are created (fields copy their messages when built;
``api/core.py`` imports this module first). The envelope's ``message`` is
already Chinese; this makes each ``data.errors`` entry fit to show a person too.
"""

from __future__ import annotations

import marshmallow as ma

FIELD_MESSAGES: dict[type, dict[str, str]] = {
    ma.fields.Field: {"required": "缺少必填字段", "null": "不能为空", "validator_failed": "取值无效"},
    ma.fields.String: {"invalid": "应为文本", "invalid_utf8": "不是有效的 UTF-8 文本"},
    ma.fields.Number: {"invalid": "应为数字", "too_large": "数值过大"},
    ma.fields.Integer: {"invalid": "应为整数"},
    ma.fields.Decimal: {"special": "不接受 NaN 或无穷大"},
    ma.fields.Boolean: {"invalid": "应为 true 或 false"},
    ma.fields.DateTime: {"invalid": "应为 RFC 3339 时间，如 2026-11-01T09:30:00+08:00", "format": "时间格式无效"},
    ma.fields.AwareDateTime: {"invalid_awareness": "时间须带时区偏移，如 +08:00"},
    ma.fields.Date: {"invalid": "应为日期，如 2026-11-01"},
    ma.fields.List: {"invalid": "应为列表"},
    ma.fields.Dict: {"invalid": "应为对象"},
    ma.fields.Nested: {"type": "应为对象"},
    ma.fields.Enum: {"unknown": "取值应为：{choices}"},
    ma.fields.Url: {"invalid": "不是有效的网址"},
}

SCHEMA_MESSAGES = {"type": "应为对象", "unknown": "未知字段"}

VALIDATOR_MESSAGES: dict[type, dict[str, str]] = {
    ma.validate.Length: {"message_min": "长度不能少于 {min}", "message_max": "长度不能超过 {max}",
                         "message_all": "长度应在 {min} 到 {max} 之间", "message_equal": "长度应为 {equal}"},
    # Range fills {min_op}/{max_op} first, then {min}/{max}: hence the doubled braces.
    ma.validate.Range: {"message_min": "应{min_op} {{min}}", "message_max": "应{max_op} {{max}}",
                        "message_all": "应{min_op} {{min}} 且{max_op} {{max}}", "message_gte": "大于或等于",
                        "message_gt": "大于", "message_lte": "小于或等于", "message_lt": "小于"},
    ma.validate.OneOf: {"default_message": "取值应为：{choices}"},
    ma.validate.Regexp: {"default_message": "格式不正确"},
    ma.validate.URL: {"default_message": "不是有效的网址"},
}


def use_chinese_messages() -> None:
    for field_class, messages in FIELD_MESSAGES.items():
        field_class.default_error_messages = {**field_class.default_error_messages, **messages}
    ma.Schema._default_error_messages = {**ma.Schema._default_error_messages, **SCHEMA_MESSAGES}
    for validator_class, messages in VALIDATOR_MESSAGES.items():
        for name, text in messages.items():
            if hasattr(validator_class, name):
                setattr(validator_class, name, text)


use_chinese_messages()
