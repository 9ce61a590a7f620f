"""Small helpers every console view uses: htmx detection, paging, field errors from the domain, times and
points as people read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from math import ceil
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import request
from wtforms import Form

from points_service.db import db
from points_service.domain.errors import ServiceError
from points_service.domain.policy import POLICY_TIMEZONE

LOCAL = ZoneInfo(POLICY_TIMEZONE)
PAGE_SIZE = 20


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@dataclass(frozen=True)
class Page:
    items: list
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.page_size))


def page_number() -> int:
    raw = request.args.get("page", "1")
    return min(int(raw), 100_000) if raw.isascii() and raw.isdigit() and int(raw) > 0 else 1


def paginate(statement: sa.Select, page: int | None = None, page_size: int = PAGE_SIZE, *,
             scalars: bool = True) -> Page:
    page = page or page_number()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery()))
    limited = statement.limit(page_size).offset((page - 1) * page_size)
    items = db.session.scalars(limited).all() if scalars else db.session.execute(limited).all()
    return Page(list(items), page, page_size, total)


def apply_field_errors(form: Form, error: ServiceError, aliases: dict[str, str] | None = None) -> None:
    """Put a use case's ``{field: [messages]}`` under the matching form fields (``aliases`` maps the use
    case's names to the form's); the rest above the form."""
    errors = (error.data or {}).get("errors") or {}
    if not isinstance(errors, dict) or not errors:
        form.form_errors.append(error.message)
        return
    for name, messages in errors.items():
        name = (aliases or {}).get(name, name)
        field = form._fields.get(name.split(".")[0]) if isinstance(name, str) else None
        text = messages if isinstance(messages, list) else [str(messages)]
        if field is not None:
            field.errors = [*field.errors, *text]
        else:
            form.form_errors.extend(f"{name}：{m}" if not name.startswith("_") else m for m in text)


def local_datetime(naive: datetime | None) -> datetime | None:
    """A ``datetime-local`` input is read in the policy's time zone (Asia/Shanghai)."""
    return None if naive is None else naive.replace(tzinfo=LOCAL)


def format_time(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(LOCAL).strftime(pattern)


def format_points(value: Decimal | int | None) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    return f"{value:+.2f}".rstrip("0").rstrip(".") if value != value.to_integral_value() else f"{int(value):+d}"


def format_plain_points(value: Decimal | int | None) -> str:
    return "—" if value is None else format_points(value).lstrip("+")


def register_filters(blueprint) -> None:
    blueprint.add_app_template_filter(format_time, "local_time")
    blueprint.add_app_template_filter(format_points, "signed_points")
    blueprint.add_app_template_filter(format_plain_points, "points")
