"""Enqueueing: every member event writes an inbox message, a grant turns it into one WeChat delivery, and the
event, its message, its delivery and the consumed grant commit together or not at all."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain import notifications
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals import records
from points_service.domain.approvals.decisions import Decision
from points_service.domain.errors import ServiceError
from points_service.domain.market import orders
from points_service.domain.market.orders import OrderRequest
from points_service.domain.reports import reporting
from points_service.models import Delivery, DeliveryState, InboxMessage, Record, RecordStatus, SubscriptionGrant
from tests.factories import make_world
from tests.factories.market import fund, make_item, principal_of
from tests.factories.notifications import enqueue, make_grant
from tests.factories.records import NOW, as_user, self_report


@pytest.fixture
def world(app):
    return make_world()


def messages(member) -> list[InboxMessage]:
    return db.session.scalars(sa.select(InboxMessage).where(InboxMessage.member_id == member.id)
                              .order_by(InboxMessage.id)).all()


def deliveries() -> list[Delivery]:
    return db.session.scalars(sa.select(Delivery).order_by(Delivery.id)).all()


def available(member, key="record_decided") -> int:
    return db.session.scalar(sa.select(SubscriptionGrant.available).where(
        SubscriptionGrant.member_id == member.id, SubscriptionGrant.template_key == key))


def decide(world, record, decision=Decision.APPROVE, comment="属实"):
    approvals.decide(as_user(world["users"]["secretary"]), approvals.approval_id(record), decision, comment, now=NOW)


def test_an_approved_record_writes_an_inbox_message_and_no_wechat_delivery_without_a_grant(world):
    record = self_report(world["users"]["alice"])
    decide(world, record)
    (message,) = messages(world["alice"])
    assert (message.event, message.title, message.read_at) == ("record_approved", "积分申请已通过", None)
    assert message.link == "/pages/report/report"
    assert deliveries() == []


def test_a_rejection_with_a_grant_enqueues_one_delivery_with_the_reason_and_consumes_the_grant(world):
    make_grant(world["alice"], available=2)
    record = self_report(world["users"]["alice"])
    decide(world, record, Decision.REJECT, "时长与照片不符，请补充签到照片后重新提交本次服务记录")
    (message,) = messages(world["alice"])
    assert "时长与照片不符" in message.body
    (delivery,) = deliveries()
    assert (delivery.message_id, delivery.state, delivery.template_key) == (message.id, DeliveryState.PENDING,
                                                                            "record_decided")
    # thing ≤ 20 characters: the long reason is cut, the phrase says the outcome
    assert len(delivery.data["thing3"]["value"]) == 20 and delivery.data["thing3"]["value"].endswith("…")
    assert delivery.data["phrase2"] == {"value": "未通过"}
    assert available(world["alice"]) == 1


def test_an_event_and_its_message_commit_together_or_not_at_all(world, monkeypatch):
    make_grant(world["alice"], available=5)
    first, second = self_report(world["users"]["alice"]), self_report(world["users"]["alice"])
    real_credit, calls = approvals.credit, []

    def credit_then_fail_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ServiceError("账本写入失败")
        return real_credit(*args, **kwargs)

    monkeypatch.setattr(approvals, "credit", credit_then_fail_on_the_second)
    with pytest.raises(ServiceError):
        approvals.decide_batch(as_user(world["users"]["secretary"]),
                               [approvals.approval_id(first), approvals.approval_id(second)], Decision.APPROVE,
                               now=NOW)
    db.session.expire_all()
    # the first record's message and delivery were flushed before the failure: rolled back with it
    assert messages(world["alice"]) == [] and deliveries() == []
    assert available(world["alice"]) == 5
    assert {r.status for r in db.session.scalars(sa.select(Record))} == {RecordStatus.PENDING}


def test_a_retried_event_enqueues_once(world):
    make_grant(world["alice"], available=3)
    assert enqueue(world["alice"], "record:9:rejected") is not None
    assert enqueue(world["alice"], "record:9:rejected") is None
    assert len(messages(world["alice"])) == 1 and len(deliveries()) == 1
    assert available(world["alice"]) == 2


def test_a_member_without_a_grant_of_the_template_gets_his_message_and_keeps_his_other_grants(world):
    make_grant(world["alice"], "order_ready", available=2)
    assert enqueue(world["alice"], "record:10:rejected") is not None
    assert len(messages(world["alice"])) == 1 and deliveries() == []
    assert available(world["alice"], "order_ready") == 2


@pytest.mark.postgres
def test_on_postgresql_the_message_the_grant_and_the_delivery_are_one_statement(world, statements):
    make_grant(world["alice"], available=1)
    before = len(statements)
    message = enqueue(world["alice"], "record:11:rejected")
    notices = [s for s in statements[before:] if "notification_" in s]
    assert len(notices) == 1
    (delivery,) = deliveries()
    assert (delivery.message_id, delivery.member_id, delivery.page) == (message.id, world["alice"].id, message.link)
    assert delivery.next_attempt_at == message.created_at and delivery.attempts == 0
    assert available(world["alice"]) == 0


def test_an_order_placed_and_cancelled_tells_the_member_to_pick_up_then_that_the_points_came_back(world):
    make_grant(world["alice"], "order_ready")
    item = make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=2)
    db.session.commit()
    fund(world["alice"], 30)
    alice = principal_of(world["users"]["alice"])
    order = orders.place_order(alice, OrderRequest(item.id))
    orders.cancel_own_order(alice, order.id)
    ready, cancelled = messages(world["alice"])
    assert ready.event == "order_ready" and order.pickup_code in ready.body
    assert cancelled.event == "order_cancelled" and "10 公益积分已退还" in cancelled.body
    (delivery,) = deliveries()
    assert delivery.message_id == ready.id and delivery.data["character_string2"] == {"value": order.pickup_code}


def test_a_rejected_report_tells_the_member_why(world):
    report = reporting.submit_member_report(as_user(world["users"]["alice"]), world["north"].id, now=NOW)
    reporting.reject_report(as_user(world["users"]["community_admin"]), report.id, "不在本社区居住", now=NOW)
    (message,) = messages(world["alice"])
    assert (message.event, message.body) == ("report_rejected", "您在北门社区的报到未通过，理由：不在本社区居住")


def test_points_in_a_message_and_its_wechat_values_read_without_trailing_zeros(world):
    make_grant(world["alice"], "order_closed")
    enqueue(world["alice"], "order:5:cancelled", event="order_cancelled", order_id=5, item_name="环保购物袋",
            reason="不需要了", points=Decimal("2.50"))
    (message,) = messages(world["alice"])
    assert message.body == "环保购物袋：订单已取消（不需要了），2.5 公益积分已退还。"
    (delivery,) = deliveries()
    assert delivery.data["number3"] == {"value": "2.5"}


def test_a_record_sent_back_twice_tells_the_member_twice_and_a_retried_notice_once(world):
    make_grant(world["alice"], available=2)
    record = self_report(world["users"]["alice"])
    decide(world, record, Decision.REQUEST_INFO, "请补充服务对象签字")
    notifications.record_decided(record, "请补充服务对象签字")  # the same send-back reported again
    db.session.commit()
    records.resubmit_record(as_user(world["users"]["alice"]), record.id, now=NOW)
    decide(world, record, Decision.REQUEST_INFO, "签字照片不清晰")
    first, second = messages(world["alice"])
    assert (first.event, second.event) == ("record_needs_info", "record_needs_info")
    assert (first.source_key, second.source_key) == (f"record:{record.id}:needs_info:1",
                                                     f"record:{record.id}:needs_info:2")
    assert first.body.endswith("需补充材料，说明：请补充服务对象签字") and second.body.endswith("签字照片不清晰")
    assert [d.data["phrase2"] for d in deliveries()] == [{"value": "需补充"}] * 2
    assert deliveries()[1].data["thing3"] == {"value": "签字照片不清晰"}
    assert deliveries()[0].data["time4"] == {"value": "2026-11-10 10:00"}  # the decision's time
    assert available(world["alice"]) == 0
