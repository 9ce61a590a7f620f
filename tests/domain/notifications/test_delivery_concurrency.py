"""On PostgreSQL: delivery processes running at once claim rows with FOR UPDATE SKIP LOCKED, so WeChat receives
each message exactly once."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.notifications import delivery as outbox
from points_service.integrations import wechat
from points_service.models import Delivery, DeliveryState
from tests.concurrency import hammer
from tests.factories import make_world
from tests.factories.notifications import enqueue, make_grant, on_wechat
from tests.fake_wechat import serve_fake_subscribe, wechat_config

pytestmark = pytest.mark.postgres


def test_four_deliverers_at_once_send_each_of_forty_messages_exactly_once(app, httpserver):
    wechat.forget_tokens()
    app.config.update(wechat_config(httpserver), WECHAT_DEV_SEND=False)
    world = make_world()
    on_wechat(world["users"]["alice"])
    make_grant(world["alice"], available=40)
    db.session.commit()
    fake = serve_fake_subscribe(httpserver)
    for n in range(40):
        enqueue(world["alice"], f"record:{n}:rejected", record_id=n, reason=f"理由{n}")

    hammer(app, [outbox.deliver_due for _ in range(4)], workers=4)

    reasons = Counter(send["data"]["thing3"]["value"] for send in fake.sends)
    assert len(reasons) == 40 and set(reasons.values()) == {1}
    db.session.expire_all()
    states = db.session.scalars(sa.select(Delivery.state)).all()
    assert Counter(states) == {DeliveryState.SENT: 40}
    wechat.forget_tokens()
