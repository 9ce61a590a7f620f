"""On PostgreSQL: a member's acceptances of a template arriving at once (the mini-program asks on several pages)
each count, none fails on the grant's unique key."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.notifications.inbox import grant_subscriptions
from points_service.models import SubscriptionGrant, User
from tests.concurrency import hammer
from tests.factories import make_world

pytestmark = pytest.mark.postgres


def accepting(user_id: int, keys: list[str]):
    def call():
        return grant_subscriptions(principal_for(db.session.get(User, user_id)), keys)
    return call


def test_twelve_first_acceptances_of_one_template_at_once_are_twelve_grants(app):
    world = make_world()
    db.session.commit()
    alice = world["users"]["alice"].id

    answers = hammer(app, [accepting(alice, ["record_decided", "order_ready"])] * 12, workers=12)

    assert sorted(answer["granted"]["record_decided"] for answer in answers) == list(range(1, 13))
    grants = db.session.execute(sa.select(SubscriptionGrant.template_key, SubscriptionGrant.available,
                                          SubscriptionGrant.granted_total)
                                .order_by(SubscriptionGrant.template_key)).all()
    assert [tuple(row) for row in grants] == [("order_ready", 12, 12), ("record_decided", 12, 12)]
