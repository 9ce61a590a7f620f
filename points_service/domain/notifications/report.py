"""What admins read about notifications: outbox rows by state, and the latest deliveries with why they failed."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import Principal, authorize
from points_service.models import Delivery, DeliveryState, InboxMessage, Member


def state_counts() -> dict[str, int]:
    counts = dict(db.session.execute(sa.select(Delivery.state, sa.func.count()).group_by(Delivery.state)).all())
    return {str(state): counts.get(state, 0) for state in DeliveryState}


def outbox_summary(actor: Principal) -> dict:
    """Counts by state, possible duplicates, and inbox messages written and still unread."""
    authorize(actor, "notifications.monitor")
    return {
        "states": state_counts(),
        "duplicates": db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)
                                        .where(Delivery.duplicate_possible.is_(True))),
        "messages": db.session.scalar(sa.select(sa.func.count()).select_from(InboxMessage)),
        "unread": db.session.scalar(sa.select(sa.func.count()).select_from(InboxMessage)
                                    .where(InboxMessage.read_at.is_(None))),
    }


def deliveries(actor: Principal, state: DeliveryState | None = None) -> sa.Select:
    """Newest first, with the member's name and the message's title (rows, for the console's table)."""
    authorize(actor, "notifications.monitor")
    statement = (sa.select(Delivery, Member.name.label("member_name"), InboxMessage.title.label("title"))
                 .join(Member, Member.id == Delivery.member_id)
                 .join(InboxMessage, InboxMessage.id == Delivery.message_id))
    if state is not None:
        statement = statement.where(Delivery.state == state)
    return statement.order_by(Delivery.updated_at.desc(), Delivery.id.desc())
