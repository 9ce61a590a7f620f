"""Enqueueing: one inbox message per member event, and one outbox delivery when the member holds a grant.

``notify`` only flushes: it runs inside the use case's transaction, so the event, its message, its delivery
and the grant it consumes commit together or not at all.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from points_service.db import attach_written, compiled_text, core_execute, db, insert_unless_exists, utcnow
from points_service.domain.notifications.config import (
    FIELD_LIMITS,
    FREE_TEXT_TYPES,
    field_type,
    notification_config,
)
from points_service.domain.periods import LOCAL_TZ
from points_service.models import Delivery, InboxMessage, SubscriptionGrant
from points_service.transactions import column_values

log = logging.getLogger(__name__)


def text_of(value) -> str:
    """A value as a member reads it: instants in Asia/Shanghai, points without trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return points_text(value)
    return str(value)


def points_text(points: Decimal) -> str:
    """Points as the mini-program shows them, without trailing zeros: 2.50 → 2.5, 3.00 → 3, 0.25 → 0.25."""
    return format(points.normalize(), "f") if points else "0"  # -0.00 too is "0"


def _cut(text: str, kind: str) -> str:
    """Within the type's limit: free text ends with "…" when cut; other types take only some characters (digits,
    letters, Chinese), so theirs are cut without it."""
    limit = FIELD_LIMITS[kind]
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if kind in FREE_TEXT_TYPES else text[:limit]


def wechat_data(fields: dict[str, str], texts: dict[str, str]) -> dict:
    """WeChat's ``data``: each keyword's value cut to its type's limit (a thing is at most 20 characters)."""
    return {keyword: {"value": _cut(texts.get(name, "") or "-", field_type(keyword))}
            for keyword, name in fields.items()}


def notify(member_id: int, event: str, source_key: str, values: dict) -> InboxMessage | None:
    """Write the member's inbox message for ``event`` (once per source_key) and, if the event has a template and
    he holds a grant for it, consume one and enqueue the WeChat delivery. Flushes only. None when already
    notified."""
    config = notification_config()
    spec = config.events.get(event)
    if spec is None:
        return None  # the deployment does not notify this event
    texts = {name: text_of(value) for name, value in values.items()}
    row = {"member_id": member_id, "event": event, "source_key": source_key[:80],
           "title": spec.title.format_map(texts)[:60], "body": spec.body.format_map(texts)[:500],
           "link": spec.link.format_map(texts)[:200], "created_at": utcnow(), "read_at": None}
    if spec.template is None:  # no WeChat template carries this event: the inbox alone tells him
        message_id = insert_unless_exists(InboxMessage, row, ("source_key", "member_id"))
    else:
        message_id = _enqueue(row, {"member_id": member_id, "template_key": spec.template, "page": row["link"],
                                    "data": wechat_data(config.templates[spec.template].fields, texts),
                                    "next_attempt_at": row["created_at"]})
    if message_id is None:
        return None  # a retried event or a second job run: notified already (the unique key decides)
    return attach_written(InboxMessage(id=message_id, **row))


def _enqueue(message: dict, delivery: dict) -> int | None:
    """Write the message unless its key exists; if so and the member holds a grant for the template, consume one
    and write the delivery. On PostgreSQL one statement (each step a CTE on the one before); elsewhere up to
    three. The new message's id, or None."""
    if db.session.get_bind().dialect.name == "postgresql":
        row = column_values(Delivery(**delivery))  # with the columns' defaults (state, attempts, …)
        params = {f"m_{c}": v for c, v in message.items()} | {f"d_{c}": row[c] for c in DELIVERY_COLUMNS}
        return core_execute(_enqueue_statement(), params).scalar()
    message_id = insert_unless_exists(InboxMessage, message, ("source_key", "member_id"))
    if message_id is not None and _take_grant(delivery["member_id"], delivery["template_key"]):
        db.session.add(Delivery(message_id=message_id, **delivery))
        db.session.flush()
    return message_id


@functools.cache
def _enqueue_statement() -> sa.TextClause:
    messages, grants = InboxMessage.__table__, SubscriptionGrant.__table__
    written = (postgresql.insert(messages).values({c: sa.bindparam(f"m_{c}", type_=messages.c[c].type)
                                                   for c in MESSAGE_COLUMNS})
               .on_conflict_do_nothing(index_elements=["source_key", "member_id"]).returning(messages.c.id)
               .cte("written"))
    taken = (sa.update(grants).where(grants.c.member_id == sa.bindparam("d_member_id"),
                                     grants.c.template_key == sa.bindparam("d_template_key"),
                                     grants.c.available > 0, sa.exists(sa.select(written.c.id)))
             .values(available=grants.c.available - 1).returning(grants.c.id).cte("taken"))
    deliveries = Delivery.__table__
    enqueued = deliveries.insert().from_select(
        ["message_id", *DELIVERY_COLUMNS],
        sa.select(written.c.id, *(sa.bindparam(f"d_{c}", type_=deliveries.c[c].type) for c in DELIVERY_COLUMNS))
        .select_from(written.join(taken, sa.true())),
    ).returning(deliveries.c.id).cte("enqueued")
    return compiled_text(sa.select(written.c.id).add_cte(enqueued), "postgresql")


MESSAGE_COLUMNS = tuple(c.key for c in InboxMessage.__table__.columns if not c.primary_key)
DELIVERY_COLUMNS = tuple(c.key for c in Delivery.__table__.columns if not c.primary_key and c.key != "message_id")


def _take_grant(member_id: int, template_key: str) -> bool:
    return core_execute(_take_grant_statement(), {"m_id": member_id, "t_key": template_key}).rowcount == 1


@functools.cache
def _take_grant_statement() -> sa.Update:
    """One use of the member's subscription for the template, if he has one left (built once: every write that
    notifies runs it)."""
    grants = SubscriptionGrant.__table__
    return (sa.update(grants).where(grants.c.member_id == sa.bindparam("m_id"),
                                    grants.c.template_key == sa.bindparam("t_key"), grants.c.available > 0)
            .values(available=grants.c.available - 1))
