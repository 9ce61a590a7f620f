"""积分超市 over HTTP: the catalogue a member sees, ordering with an Idempotency-Key, pick-up, cancel, admin
items and stock, pictures, GET /me's open orders and the ledger naming the item — and every refusal a stable
code with nothing written."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
import sqlalchemy as sa
from PIL import Image

from points_service.db import db
from points_service.models import (
    AuditEntry,
    LedgerEntry,
    MarketItem,
    MarketOrder,
    MarketOrderEvent,
    Role,
    StockAdjustment,
)
from tests.factories import auth_header, make_user, make_world
from tests.factories.market import fund, make_item


@pytest.fixture
def world(app):
    world = make_world()
    world["bag"] = make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=2)
    world["haircut"] = make_item(world["street"], name="义务理发", price=Decimal(5), stock=None, limit_per_member=1)
    world["dear"] = make_item(world["north"], name="电饭煲", price=Decimal(100), stock=1)
    world["south_item"] = make_item(world["south"], name="南门水杯", price=Decimal(3))
    world["users"]["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    db.session.commit()
    fund(world["alice"], 30)
    world["h"] = {name: auth_header(user) for name, user in world["users"].items()}
    return world


def written() -> tuple[int, ...]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (MarketOrder, LedgerEntry, MarketOrderEvent, StockAdjustment))


def order(client, world, item, quantity=1, key=None, who="alice"):
    headers = {**world["h"][who], **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/v1/shop/orders", json={"item_id": item.id, "quantity": quantity}, headers=headers)


def test_a_member_sees_what_his_community_and_street_offer_with_what_he_can_afford(client, world):
    body = client.get("/api/v1/shop/items", headers=world["h"]["alice"]).get_json()
    items = {item["name"]: item for item in body["data"]["items"]}
    assert set(items) == {"环保购物袋", "义务理发", "电饭煲"}
    assert (items["环保购物袋"]["affordable"], items["电饭煲"]["affordable"]) == (True, False)
    assert items["义务理发"]["stock"] is None and items["义务理发"]["limit_left"] == 1
    detail = client.get(f"/api/v1/shop/items/{world['bag'].id}", headers=world["h"]["alice"]).get_json()["data"]
    assert detail["price"] == 10 and detail["region_name"] == "北门社区"


def test_an_order_debits_points_and_the_retry_with_the_same_key_replays_it(client, world):
    first = order(client, world, world["bag"], key="order-key-0001")
    again = order(client, world, world["bag"], key="order-key-0001")
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    me = client.get("/api/v1/me", headers=world["h"]["alice"]).get_json()["data"]["points"]
    assert (me["redeemable"], me["open_orders"]) == (20, 1)
    ledger = client.get(f"/api/v1/members/{world['alice'].id}/ledger?ledger=redeemable",
                        headers=world["h"]["alice"]).get_json()["data"]["items"]
    redemption = next(entry for entry in ledger if entry["kind"] == "redemption")
    assert redemption["market_item"]["name"] == "环保购物袋" and redemption["item_name"] == "积分超市兑换"


@pytest.mark.parametrize(("item", "quantity", "status", "code"), [
    ("missing", 1, 404, "item_not_found"),
    ("south_item", 1, 404, "item_not_found"),
    ("off_shelf", 1, 409, "item_unavailable"),
    ("dear", 1, 422, "insufficient_points"),
    ("bag", 3, 409, "out_of_stock"),
    ("haircut", 2, 409, "limit_reached"),
])
def test_a_refused_order_is_a_stable_code_with_a_chinese_message_and_nothing_written(
        client, world, item, quantity, status, code):
    if item == "off_shelf":
        world["bag"].on_shelf = False
        db.session.commit()
    target = world.get(item) or world["bag"] if item != "missing" else MarketItem(id=999_999)
    before = written()
    response = order(client, world, target, quantity)
    body = response.get_json()
    assert (response.status_code, body["code"]) == (status, code)
    assert any("\u4e00" <= char <= "\u9fff" for char in body["message"])
    assert written() == before


def test_the_community_admin_hands_over_by_code_and_a_wrong_or_foreign_code_is_404(client, world):
    placed = order(client, world, world["bag"]).get_json()["data"]
    code = placed["pickup_code"]
    before = written()
    for who, typed in (("community_admin", "ZZZZZZ"), ("south_admin", code), ("alice", code)):
        response = client.post("/api/v1/shop/pickups", json={"code": typed}, headers=world["h"][who])
        assert response.status_code in (403, 404) and written() == before
    assert client.post("/api/v1/shop/pickups", json={"code": "ZZZZZZ"},
                       headers=world["h"]["community_admin"]).get_json()["code"] == "pickup_code_invalid"
    done = client.post("/api/v1/shop/pickups", json={"code": code.lower()}, headers=world["h"]["community_admin"])
    assert done.status_code == 200 and done.get_json()["data"]["state"] == "picked_up"
    assert done.get_json()["data"]["pickup_code"] is None


@pytest.mark.parametrize("scanned", ["https://points.example.cn/shop/pickup?code={code}&from=qr",
                                     "pickup:{code}", "https://points.example.cn/shop/pickup/{code}"])
def test_a_desk_scanner_may_send_the_whole_scanned_text(client, world, scanned):
    code = order(client, world, world["bag"]).get_json()["data"]["pickup_code"]
    done = client.post("/api/v1/shop/pickups", json={"code": scanned.format(code=code)},
                       headers=world["h"]["community_admin"])
    assert done.status_code == 200 and done.get_json()["data"]["state"] == "picked_up"


def test_the_member_cancels_and_sees_the_refund_and_his_orders(client, world):
    placed = order(client, world, world["bag"], 2).get_json()["data"]
    cancelled = client.post(f"/api/v1/shop/orders/{placed['id']}/cancel", headers=world["h"]["alice"])
    assert cancelled.status_code == 200 and cancelled.get_json()["data"]["state"] == "cancelled"
    again = client.post(f"/api/v1/shop/orders/{placed['id']}/cancel", headers=world["h"]["alice"])
    assert (again.status_code, again.get_json()["code"]) == (409, "order_not_open")
    mine = client.get("/api/v1/me/orders", headers=world["h"]["alice"]).get_json()["data"]
    assert [o["state"] for o in mine["items"]] == ["cancelled"]
    assert client.get("/api/v1/me", headers=world["h"]["alice"]).get_json()["data"]["points"]["redeemable"] == 30
    other = client.post(f"/api/v1/shop/orders/{placed['id']}/cancel", headers=world["h"]["bob"])
    assert other.status_code == 404


def test_an_admin_cancels_with_a_reason_from_his_queue(client, world):
    placed = order(client, world, world["bag"]).get_json()["data"]
    queue = client.get("/api/v1/shop/admin/orders", headers=world["h"]["community_admin"]).get_json()["data"]
    assert [o["id"] for o in queue["items"]] == [placed["id"]]
    assert client.get("/api/v1/shop/admin/orders", headers=world["h"]["south_admin"]).get_json()["data"]["total"] == 0
    url = f"/api/v1/shop/admin/orders/{placed['id']}/cancel"
    assert client.post(url, json={"reason": "缺货"}, headers=world["h"]["south_admin"]).status_code == 404
    done = client.post(url, json={"reason": "缺货"}, headers=world["h"]["community_admin"]).get_json()["data"]
    assert (done["state"], done["close_reason"]) == ("cancelled", "缺货")


def test_an_admin_cannot_reverse_an_orders_ledger_entries_and_cancelling_the_order_refunds_it(client, world):
    placed = order(client, world, world["bag"]).get_json()["data"]
    debit = db.session.get(MarketOrder, placed["id"]).redemption_entry_id
    before = written()
    refused = client.post(f"/api/v1/ledger/{debit}/reverse", json={"reason": "误兑换"}, headers=world["h"]["admin"])
    assert (refused.status_code, refused.get_json()["code"]) == (409, "order_entry_not_reversible")
    assert "取消订单" in refused.get_json()["message"] and written() == before
    url = f"/api/v1/shop/admin/orders/{placed['id']}/cancel"
    assert client.post(url, json={"reason": "误兑换"}, headers=world["h"]["admin"]).status_code == 200
    assert client.get("/api/v1/me", headers=world["h"]["alice"]).get_json()["data"]["points"]["redeemable"] == 30
    refund = db.session.get(MarketOrder, placed["id"]).refund_entry_id
    again = client.post(f"/api/v1/ledger/{refund}/reverse", json={"reason": "x"}, headers=world["h"]["admin"])
    assert (again.status_code, again.get_json()["code"]) == (409, "order_entry_not_reversible")


def test_admins_create_and_edit_items_of_their_scope_only(client, world):
    body = {"region_id": world["north"].id, "name": "党徽", "price": 8, "stock": 20, "limit_per_member": 2}
    created = client.post("/api/v1/shop/items", json=body, headers=world["h"]["community_admin"])
    assert created.status_code == 201 and created.get_json()["data"]["stock"] == 20
    refused = client.post("/api/v1/shop/items", json={**body, "region_id": world["street"].id},
                          headers=world["h"]["community_admin"])
    assert refused.status_code == 403
    item_id = created.get_json()["data"]["id"]
    patched = client.patch(f"/api/v1/shop/items/{item_id}", json={"on_shelf": False, "price": 9},
                           headers=world["h"]["community_admin"]).get_json()["data"]
    assert (patched["on_shelf"], patched["price"], patched["description"]) == (False, 9, "")
    assert client.patch(f"/api/v1/shop/items/{item_id}", json={"stock": 1},
                        headers=world["h"]["community_admin"]).status_code == 422
    assert client.patch(f"/api/v1/shop/items/{item_id}", json={"name": "x"},
                        headers=world["h"]["south_admin"]).status_code == 404
    assert client.post("/api/v1/shop/items", json=body, headers=world["h"]["alice"]).status_code == 403


def test_stock_adjustments_are_audited_and_never_go_below_zero(client, world):
    url = f"/api/v1/shop/items/{world['bag'].id}/stock"
    added = client.post(url, json={"delta": 5, "reason": "新到货"}, headers=world["h"]["community_admin"])
    assert added.status_code == 200 and added.get_json()["data"]["stock"] == 7
    too_many = client.post(url, json={"delta": -8, "reason": "盘点"}, headers=world["h"]["community_admin"])
    assert (too_many.status_code, too_many.get_json()["code"]) == (409, "stock_negative")
    unlimited = client.post(f"/api/v1/shop/items/{world['haircut'].id}/stock", json={"delta": 1, "reason": "x"},
                            headers=world["h"]["admin"])
    assert unlimited.get_json()["code"] == "stock_unlimited"
    rows = db.session.scalars(sa.select(StockAdjustment)).all()
    assert [(row.delta, row.stock_after, row.reason) for row in rows] == [(5, 7, "新到货")]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "market.stock_adjust")) == 1


def png(width=200, height=120, kind="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, kind)
    return buffer.getvalue()


def upload(client, world, content: bytes, who="community_admin"):
    return client.post(f"/api/v1/shop/items/{world['bag'].id}/picture", headers=world["h"][who],
                       data={"picture": (io.BytesIO(content), "bag.png")}, content_type="multipart/form-data")


def test_a_checked_picture_is_stored_and_served_with_its_type_and_safe_headers(client, world):
    response = upload(client, world, png())
    assert response.status_code == 200
    url = response.get_json()["data"]["picture_url"]
    served = client.get(url)
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == png()
    assert served.headers["X-Content-Type-Options"] == "nosniff" and "max-age" in served.headers["Cache-Control"]
    assert "public" in served.headers["Cache-Control"]  # a product picture shows no one: shared caches may keep it
    assert client.get("/api/v1/shop/pictures/..%2Fsecret.png").status_code == 404


BAD_PICTURES = [b"GIF89a not really", png(20, 20), png(kind="GIF"), b"\x89PNG\r\n\x1a\n" + b"0" * 64]


@pytest.mark.parametrize("content", BAD_PICTURES)
def test_a_picture_of_the_wrong_type_or_size_is_refused(client, world, content):
    response = upload(client, world, content)
    assert (response.status_code, response.get_json()["code"]) == (422, "picture_invalid")
    assert db.session.get(MarketItem, world["bag"].id).picture is None


def test_the_catalogue_filters_by_the_level_that_offers_the_item(client, world):
    make_item(world["city"], name="全市通用公交卡充值", price=Decimal(20), stock=None)
    db.session.commit()

    def names(scope):
        response = client.get(f"/api/v1/shop/items?scope={scope}", headers=world["h"]["alice"])
        assert response.status_code == 200
        return {item["name"]: item["scope"] for item in response.get_json()["data"]["items"]}

    assert names("community") == {"环保购物袋": "community", "电饭煲": "community"}
    assert names("street") == {"义务理发": "street"}
    assert names("city") == {"全市通用公交卡充值": "city"}
    assert names("district") == {}
    assert set(names("all")) == {"环保购物袋", "电饭煲", "义务理发", "全市通用公交卡充值"}
    assert client.get("/api/v1/shop/items", headers=world["h"]["alice"]).get_json()["data"]["total"] == 4


@pytest.mark.parametrize("scope", ["grid", "region:1", "COMMUNITY", ""])
def test_an_unknown_catalogue_scope_is_a_422_naming_the_field(client, world, scope):
    response = client.get(f"/api/v1/shop/items?scope={scope}", headers=world["h"]["alice"])
    body = response.get_json()
    assert response.status_code == 422 and "scope" in str(body["data"]["errors"])


def assert_refused(response, status: int, code: str) -> None:
    body = response.get_json()
    assert (response.status_code, body["code"]) == (status, code)
    assert any("\u4e00" <= char <= "\u9fff" for char in body["message"])


def test_another_communitys_order_is_not_found_for_its_admin_and_nothing_is_written(client, world):
    placed = order(client, world, world["bag"]).get_json()["data"]
    before = written()
    south = world["h"]["south_admin"]
    assert_refused(client.post("/api/v1/shop/pickups", json={"code": placed["pickup_code"]}, headers=south),
                   404, "pickup_code_invalid")
    assert_refused(client.post(f"/api/v1/shop/admin/orders/{placed['id']}/cancel", json={"reason": "不是本社区"},
                               headers=south), 404, "order_not_found")
    assert_refused(client.post(f"/api/v1/shop/orders/{placed['id']}/cancel", headers=world["h"]["bob"]),
                   404, "order_not_found")
    assert written() == before
    assert db.session.get(MarketOrder, placed["id"]).state == "placed"


def test_a_wrong_pickup_code_is_a_stable_code_and_nothing_is_written(client, world):
    order(client, world, world["bag"])
    before = written()
    assert_refused(client.post("/api/v1/shop/pickups", json={"code": "ZZZZZZ"},
                               headers=world["h"]["community_admin"]), 404, "pickup_code_invalid")
    assert written() == before
