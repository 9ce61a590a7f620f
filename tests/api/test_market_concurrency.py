"""On PostgreSQL: storms of concurrent orders over HTTP never oversell, never pass a member's limit, and a
replayed Idempotency-Key makes one order; balances always equal the ledger."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import cents, db, from_cents
from points_service.domain.ledger.totals import compare_totals
from points_service.models import LedgerEntry, MarketItem, MarketOrder
from tests.concurrency import hammer
from tests.factories import auth_header, make_member, make_user, make_world
from tests.factories.market import fund, make_item

pytestmark = pytest.mark.postgres


def post_order(app, headers, item_id, key=None):
    response = app.test_client().post("/api/v1/shop/orders", json={"item_id": item_id},
                                      headers={**headers, **({"Idempotency-Key": key} if key else {})})
    body = response.get_json() or {}
    return response.status_code, body.get("code"), (body.get("data") or {}).get("id")


def redeemable_sums() -> dict[int, Decimal]:
    rows = db.session.execute(sa.select(LedgerEntry.subject_id, sa.func.sum(cents(LedgerEntry.points)))
                              .where(LedgerEntry.ledger == "redeemable").group_by(LedgerEntry.subject_id))
    return {member_id: from_cents(total) for member_id, total in rows}


def test_two_hundred_members_racing_for_the_last_ten_units_get_exactly_ten_orders(app):
    world = make_world()
    item = make_item(world["north"], price=Decimal(10), stock=10)
    members = [make_member(world["fin1"], world["north"]) for _ in range(200)]
    users = [make_user(member=member) for member in members]
    db.session.commit()
    for member in members:
        fund(member, 20)
    headers = [auth_header(user) for user in users]

    results = hammer(app, [lambda h=h: post_order(app, h, item.id) for h in headers])

    assert Counter(status for status, *_ in results) == {201: 10, 409: 190}, Counter(results)
    assert {code for status, code, _ in results if status == 409} == {"out_of_stock"}
    db.session.expire_all()
    assert db.session.get(MarketItem, item.id).stock == 0 and db.session.get(MarketItem, item.id).sold == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 10
    sums = redeemable_sums()
    assert sorted(sums[member.id] for member in members) == [Decimal(10)] * 10 + [Decimal(20)] * 190
    assert compare_totals() == []


def test_one_member_ordering_a_hundred_times_against_a_limit_of_one_gets_one_order(app):
    world = make_world()
    item = make_item(world["north"], price=Decimal(1), stock=None, limit_per_member=1)
    db.session.commit()
    fund(world["alice"], 200)
    alice = auth_header(world["users"]["alice"])

    results = hammer(app, [lambda: post_order(app, alice, item.id)] * 100, workers=50)

    assert Counter(status for status, *_ in results) == {201: 1, 409: 99}
    assert {code for status, code, _ in results if status == 409} == {"limit_reached"}
    assert redeemable_sums()[world["alice"].id] == Decimal(199)
    assert compare_totals() == []


def test_the_same_idempotency_key_replayed_concurrently_makes_one_order(app):
    world = make_world()
    item = make_item(world["north"], price=Decimal(1), stock=50)
    db.session.commit()
    fund(world["alice"], 100)
    alice = auth_header(world["users"]["alice"])

    results = hammer(app, [lambda: post_order(app, alice, item.id, "same-key-000001")] * 60, workers=30)

    assert {status for status, *_ in results} <= {201, 409}
    assert {code for status, code, _ in results if status == 409} <= {"idempotency_in_flight"}
    assert len({order_id for status, _, order_id in results if status == 201}) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 1
    db.session.expire_all()
    assert db.session.get(MarketItem, item.id).stock == 49
    assert redeemable_sums()[world["alice"].id] == Decimal(99)
