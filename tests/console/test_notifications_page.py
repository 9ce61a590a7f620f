"""消息通知 console page: admins see the outbox by state, the latest failures with WeChat's reason, and filter."""

from __future__ import annotations

from points_service.db import db
from points_service.models import Delivery, DeliveryState
from tests.console.helpers import sign_in, text
from tests.factories.notifications import enqueue, make_grant


def outbox(world):
    make_grant(world["alice"], available=2)
    db.session.commit()
    sent, refused = enqueue(world["alice"], "a", item_name="志愿服务"), enqueue(world["alice"], "b")
    enqueue(world["bob"], "c")  # inbox only: no grant
    rows = {row.message_id: row for row in db.session.query(Delivery)}
    rows[sent.id].state = DeliveryState.SENT
    rows[refused.id].state, rows[refused.id].last_errcode = DeliveryState.PERMANENT_FAILED, 43101
    rows[refused.id].last_error = "user refuse to accept the msg"
    db.session.commit()


def test_an_admin_sees_counts_by_state_and_why_a_message_failed(client, world):
    outbox(world)
    sign_in(client, "admin")
    page = text(client.get("/console/notifications"))
    assert "消息通知" in page and "43101 user refuse to accept the msg" in page and world["alice"].name in page
    only_failed = text(client.get("/console/notifications?state=permanent_failed"))
    assert "43101" in only_failed and "已发送 " not in only_failed.split("更新时间")[1]
    assert "没有记录" in text(client.get("/console/notifications?state=failed"))


def test_the_page_is_in_the_admin_menu_and_closed_to_others(client, world):
    sign_in(client, "admin")
    assert "/console/notifications" in client.get("/console/").get_data(as_text=True)
    client.get("/console/logout")
    sign_in(client, "north_admin")
    assert client.get("/console/notifications").status_code == 403
