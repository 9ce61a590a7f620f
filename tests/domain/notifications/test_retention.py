"""Purging the outbox: deliveries that ended before the cutoff are deleted in committed batches; a delivery still
to be sent and every inbox message are kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.notifications import purge_deliveries
from points_service.models import Delivery, DeliveryState, InboxMessage
from tests.factories import make_world
from tests.factories.notifications import enqueue, make_grant

DAY = timedelta(days=1)


@pytest.fixture
def alice(app):
    world = make_world()
    make_grant(world["alice"], available=20)
    db.session.commit()
    return world["alice"]


def deliveries_in(alice, *states_and_ages: tuple[DeliveryState, timedelta]) -> None:
    """One enqueued event per (state, age), its delivery ended (or last touched) that long ago."""
    now = utcnow()
    for n, (state, age) in enumerate(states_and_ages):
        message = enqueue(alice, f"retention:{n}")
        delivery = db.session.scalar(sa.select(Delivery).where(Delivery.message_id == message.id))
        delivery.state, delivery.updated_at = state, now - age
        delivery.created_at = delivery.next_attempt_at = now - age - DAY
    db.session.commit()


def kept() -> list[tuple[str, str]]:
    db.session.expire_all()
    rows = db.session.execute(sa.select(InboxMessage.source_key, Delivery.state)
                              .join(InboxMessage, InboxMessage.id == Delivery.message_id).order_by(Delivery.id))
    return [(source, str(state)) for source, state in rows]


def messages() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(InboxMessage))


def test_ended_deliveries_older_than_the_cutoff_are_deleted_and_the_rest_kept(alice):
    deliveries_in(alice, (DeliveryState.SENT, 91 * DAY), (DeliveryState.FAILED, 91 * DAY),
                  (DeliveryState.PERMANENT_FAILED, 91 * DAY), (DeliveryState.SENT, 89 * DAY),
                  (DeliveryState.PENDING, 200 * DAY), (DeliveryState.SENDING, 200 * DAY))
    assert purge_deliveries(utcnow() - 90 * DAY) == 3
    assert not db.session().in_transaction()
    assert kept() == [("retention:3", "sent"), ("retention:4", "pending"), ("retention:5", "sending")]
    assert messages() == 6  # the inbox is the member's: every message stays, also those whose delivery went
    assert purge_deliveries(utcnow() - 90 * DAY) == 0


def test_a_retried_delivery_waiting_for_its_next_attempt_is_never_purged(alice):
    deliveries_in(alice, (DeliveryState.PENDING, 365 * DAY))
    db.session.execute(sa.update(Delivery).values(attempts=3, last_errcode=-1))
    db.session.commit()
    assert purge_deliveries(utcnow()) == 0
    assert kept() == [("retention:0", "pending")]


def test_deliveries_are_deleted_in_committed_batches(alice, monkeypatch):
    deliveries_in(alice, *[(DeliveryState.SENT, 100 * DAY)] * 5, (DeliveryState.PENDING, 100 * DAY))
    commits = []
    real_commit = db.session.commit
    monkeypatch.setattr(db.session, "commit", lambda: (commits.append(len(kept())), real_commit())[1])
    assert purge_deliveries(utcnow() - 90 * DAY, batch_size=2) == 5
    assert commits == [4, 2, 1, 1]  # rows left after batches of 2, 2 and 1, then the closing commit
    assert kept() == [("retention:5", "pending")] and messages() == 6
