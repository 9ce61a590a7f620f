"""The notifications configuration (config/notifications.yaml): templates, events, delivery, reminders.

Validated by a marshmallow schema at start-up (``init_app``), so a typo never reaches a member: unknown keys,
an event naming an unknown template or a value its event does not provide, a WeChat keyword of an unknown
type. Template ids come from the environment in production (``template_id_env``), never from Python.
"""

from __future__ import annotations

import math
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path

import marshmallow as ma
import yaml
from flask import current_app

from points_service.integrations.wechat import SEND_MAX_CALLS, send_worst_case_seconds

# The values each event provides (the domain fills them); templates and texts may use any of them.
EVENT_VALUES: dict[str, frozenset[str]] = {
    "record_approved": frozenset({"record_id", "item_name", "result", "reason", "decided_at"}),
    "record_rejected": frozenset({"record_id", "item_name", "result", "reason", "decided_at"}),
    "record_needs_info": frozenset({"record_id", "item_name", "result", "reason", "decided_at"}),
    "report_confirmed": frozenset({"report_id", "community_name", "result", "reason", "decided_at"}),
    "report_rejected": frozenset({"report_id", "community_name", "result", "reason", "decided_at"}),
    "activity_reminder": frozenset({"activity_id", "activity_title", "starts_at", "tip"}),
    "activity_cancelled": frozenset({"activity_id", "activity_title", "starts_at", "reason"}),
    "activity_moved": frozenset({"activity_id", "activity_title", "starts_at", "ends_at", "place"}),
    "points_expiring": frozenset({"points", "expires_on", "tip"}),
    "star_published": frozenset({"run_id", "selection", "result", "publicity_ends_on"}),
    "star_removed": frozenset({"run_id", "selection", "quarter"}),
    "star_publicity_extended": frozenset({"run_id", "selection", "result", "publicity_ends_on"}),
    "order_ready": frozenset({"order_id", "item_name", "pickup_code", "pickup_deadline"}),
    "order_cancelled": frozenset({"order_id", "item_name", "reason", "points"}),
    "order_expired": frozenset({"order_id", "item_name", "reason", "points"}),
}

# WeChat's keyword types (the keyword's letters) and their length limits; None: a formatted date or time.
FIELD_LIMITS: dict[str, int | None] = {
    "thing": 20, "short_thing": 5, "phrase": 5, "name": 10, "character_string": 32, "number": 32,
    "letter": 32, "symbol": 5, "amount": 11, "phone_number": 17, "car_number": 8, "time": None, "date": None,
}
# The types that take any characters (事物): a value cut to their limit ends with "…". The others take only digits,
# letters, Chinese or certain symbols, so theirs are cut without one (WeChat would refuse the "…", 47003).
FREE_TEXT_TYPES = frozenset({"thing", "short_thing"})
# The event values written by people (names, titles, a decider's reason): any characters, any length. Only a
# free-text keyword may carry them; mapped to another, WeChat would refuse the message, so the file is refused.
FREE_TEXT_VALUES = frozenset({"item_name", "reason", "community_name", "activity_title", "tip", "selection", "place"})
_KEYWORD = re.compile(r"^([a-z_]+?)(\d+)$")
# A delivery's lease outlasts its slowest send by this much: the database work around the send, and the clocks of
# two delivery processes (each compares the lease with its own) being a little apart.
LEASE_MARGIN_SECONDS = 30


class NotificationConfigInvalid(RuntimeError):
    """The notifications file cannot be used; raised at start-up so the service never runs with it."""


def field_type(keyword: str) -> str | None:
    match = _KEYWORD.match(keyword)
    return match.group(1) if match and match.group(1) in FIELD_LIMITS else None


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class TemplateSchema(ma.Schema):
    template_id_env = ma.fields.String(load_default=None)
    template_id = ma.fields.String(load_default=None)
    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=30))
    fields = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)

    @ma.validates("fields")
    def known_keywords(self, value, **_kwargs):
        unknown = [key for key in value if field_type(key) is None]
        if unknown:
            raise ma.ValidationError(f"未知的微信模板关键词类型：{', '.join(sorted(unknown))}")
        restricted = [f"{key}: {name}" for key, name in value.items()
                      if name in FREE_TEXT_VALUES and field_type(key) not in FREE_TEXT_TYPES]
        if restricted:
            raise ma.ValidationError(f"自由文本只能填入 thing 或 short_thing 关键词：{', '.join(sorted(restricted))}")


class EventSchema(ma.Schema):
    template = ma.fields.String(load_default=None)  # none: the event is told in the inbox only
    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=60))
    body = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=300))
    link = ma.fields.String(load_default="")


class DeliverySettingsSchema(ma.Schema):
    max_attempts = ma.fields.Integer(load_default=6, validate=ma.validate.Range(min=1, max=50))
    backoff_seconds = ma.fields.Integer(load_default=60, validate=ma.validate.Range(min=1))
    backoff_cap_seconds = ma.fields.Integer(load_default=3600, validate=ma.validate.Range(min=1))
    lease_seconds = ma.fields.Integer(load_default=300, validate=ma.validate.Range(min=30))
    batch = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=10_000))
    quota_days = ma.fields.Integer(load_default=2, validate=ma.validate.Range(min=1, max=30))


class RemindersSchema(ma.Schema):
    activity_hours = ma.fields.Integer(load_default=24, validate=ma.validate.Range(min=1, max=24 * 7))
    expiry_days = ma.fields.Integer(load_default=7, validate=ma.validate.Range(min=1, max=31))


class NotificationsSchema(ma.Schema):
    templates = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$")),
                               values=ma.fields.Nested(TemplateSchema), required=True)
    events = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.OneOf(sorted(EVENT_VALUES))),
                            values=ma.fields.Nested(EventSchema), required=True)
    delivery = ma.fields.Nested(DeliverySettingsSchema, load_default=dict)
    reminders = ma.fields.Nested(RemindersSchema, load_default=dict)

    @ma.validates_schema
    def consistent(self, data, **_kwargs):
        errors = {}
        for event, spec in data.get("events", {}).items():
            template = data.get("templates", {}).get(spec["template"]) if spec["template"] else {"fields": {}}
            if template is None:
                errors[f"events.{event}.template"] = [f"未配置的模板：{spec['template']}"]
                continue
            used = set(template["fields"].values()).union(
                *(_placeholders(spec[name]) for name in ("title", "body", "link")))
            missing = used - EVENT_VALUES[event]
            if missing:
                errors[f"events.{event}"] = [f"事件不提供这些取值：{', '.join(sorted(missing))}"]
        if errors:
            raise ma.ValidationError(errors)


@dataclass(frozen=True)
class Template:
    key: str
    template_id: str | None
    title: str
    fields: dict[str, str]


@dataclass(frozen=True)
class EventText:
    event: str
    template: str | None  # None: inbox only
    title: str
    body: str
    link: str


@dataclass(frozen=True)
class NotificationConfig:
    templates: dict[str, Template]
    events: dict[str, EventText]
    delivery: dict
    reminders: dict


def parse_config(document, environ=os.environ) -> NotificationConfig:
    try:
        data = NotificationsSchema().load(document)
    except ma.ValidationError as exc:
        raise NotificationConfigInvalid(f"invalid notifications file: {exc.messages}") from exc
    templates = {key: Template(key, environ.get(spec["template_id_env"] or "") or spec["template_id"], spec["title"],
                               dict(spec["fields"])) for key, spec in data["templates"].items()}
    _refuse_shared_template_ids(templates)
    events = {event: EventText(event, **spec) for event, spec in data["events"].items()}
    return NotificationConfig(templates, events, data["delivery"], data["reminders"])


def _refuse_shared_template_ids(templates: dict[str, Template]) -> None:
    """WeChat counts a member's grants per template id, we count them per key: two keys on one id would each
    count grants WeChat holds only once, and the sends beyond them would be refused (43101)."""
    keys_of: dict[str, list[str]] = {}
    for template in templates.values():
        if template.template_id:
            keys_of.setdefault(template.template_id, []).append(template.key)
    shared = [f"{', '.join(keys)}（{template_id}）" for template_id, keys in keys_of.items() if len(keys) > 1]
    if shared:
        raise NotificationConfigInvalid(f"多个模板使用同一个微信模板 ID：{'; '.join(shared)}")


def load_config(path: str | Path, environ=os.environ) -> NotificationConfig:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise NotificationConfigInvalid(f"cannot read the notifications file {path}: {exc}") from exc
    return parse_config(document, environ)


def check_lease(delivery: dict, timeout: float) -> None:
    """A delivery's lease must outlast its slowest send: once it has passed, another run re-sends the message."""
    needed = math.ceil(send_worst_case_seconds(timeout)) + LEASE_MARGIN_SECONDS
    if delivery["lease_seconds"] < needed:
        raise NotificationConfigInvalid(
            f"delivery.lease_seconds（{delivery['lease_seconds']} 秒）短于一次发送的最长用时 {needed} 秒："
            f"最多 {SEND_MAX_CALLS} 次微信调用，每次连接与读取各等 WECHAT_TIMEOUT_SECONDS（{timeout:g} 秒），"
            f"另加 {LEASE_MARGIN_SECONDS} 秒余量；发送未完成时租约到期，另一次运行会重复发送")


def init_app(app) -> None:
    """Load and validate the file against the settings; production also needs every template's WeChat id."""
    config = load_config(app.config["NOTIFICATIONS_FILE"])
    check_lease(config.delivery, app.config["WECHAT_TIMEOUT_SECONDS"])
    if app.config.get("ENV_NAME") == "production":
        missing = [t.key for t in config.templates.values() if not t.template_id or t.template_id.startswith("dev-")]
        if missing:
            raise NotificationConfigInvalid(f"WeChat template ids missing for: {', '.join(missing)}")
    app.extensions["notifications"] = config


def notification_config() -> NotificationConfig:
    return current_app.extensions["notifications"]
