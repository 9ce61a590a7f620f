"""积分超市 console forms: admins add and edit the items of their own regions (with a picture checked as the
API checks it), adjust stock with a reason, and see each open order's pick-up code as a QR; the desk accepts
what a scanner types. Refusals are shown in Chinese on the form and write nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from PIL import Image

from points_service.db import db
from points_service.domain.market.orders import OrderRequest, place_order
from points_service.models import AuditEntry, MarketItem, MarketOrder, OrderState, StockAdjustment
from tests.console.helpers import post, sign_in, text
from tests.factories.market import fund, make_item, principal_of


def png(width=120, height=90, kind="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, kind)
    return buffer.getvalue()


def item_form(region, **overrides) -> dict:
    return {"region_id": str(region.id), "name": "环保购物袋", "description": "可重复使用", "price": "12.5",
            "stock": "20", "limit_per_member": "2", "limit_period": "month", "visible_from": "",
            "visible_until": "", "on_shelf": "y", **overrides}


def counts() -> tuple[int, ...]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (MarketItem, StockAdjustment, AuditEntry))


@pytest.fixture
def bag(world):
    item = make_item(world["north"], name="党徽", price=Decimal(8), stock=3)
    db.session.commit()
    return item


def test_a_community_admin_adds_an_item_with_a_picture_to_his_community(client, world):
    sign_in(client, "north_admin")
    page = text(client.get("/console/market/items/new"))
    assert "北门社区（社区）" in page and "南门社区" not in page and "古槐街道" not in page
    data = {**item_form(world["north"]), "picture": (io.BytesIO(png()), "bag.png")}
    response = post(client, "/console/market/items/new", data, content_type="multipart/form-data",
                    follow_redirects=True)
    assert response.status_code == 200 and "商品“环保购物袋”已添加" in text(response)
    item = db.session.scalar(sa.select(MarketItem).where(MarketItem.name == "环保购物袋"))
    assert (item.region_id, item.price, item.stock, item.limit_per_member) == (world["north"].id, Decimal("12.5"),
                                                                                20, 2)
    assert item.picture.endswith(".png") and client.get(f"/api/v1/shop/pictures/{item.picture}").data == png()
    assert db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.action == "market.item_create"))


def test_a_blank_stock_is_an_unlimited_service_and_times_are_read_in_shanghai(client, world):
    sign_in(client, "admin")
    post(client, "/console/market/items/new", item_form(world["street"], name="义务理发", stock="",
                                                         visible_from="2026-12-01T08:00"))
    item = db.session.scalar(sa.select(MarketItem).where(MarketItem.name == "义务理发"))
    assert item.stock is None and item.visible_from.isoformat().startswith("2026-12-01T00:00")


def test_an_item_for_another_communitys_region_is_refused_on_the_form(client, world):
    sign_in(client, "north_admin")
    before = counts()
    response = post(client, "/console/market/items/new", item_form(world["south"]))
    assert response.status_code == 403 and "无权执行此操作" in text(response)
    assert counts() == before


@pytest.mark.parametrize(("overrides", "message"), [
    ({"price": "很多"}, "不是有效的小数"),
    ({"price": "0"}, "应在 0.01–100000 之间"),
    ({"price": "1.234"}, "积分最多两位小数"),
    ({"name": ""}, "此项必填"),
    ({"stock": "-1"}, "应在 0–1000000 之间"),
    ({"limit_per_member": "两件"}, "不是有效的整数"),
    ({"visible_from": "2026-12-10T08:00", "visible_until": "2026-12-01T08:00"}, "下架时间应晚于上架时间"),
])
def test_bad_input_is_shown_in_chinese_under_its_field_and_nothing_is_written(client, world, overrides, message):
    sign_in(client, "north_admin")
    before = counts()
    response = post(client, "/console/market/items/new", item_form(world["north"], **overrides))
    assert response.status_code == 422 and message in text(response) and 'class="field-error"' in text(response)
    assert counts() == before


@pytest.mark.parametrize("content", [b"GIF89a not really", png(20, 20), png(kind="GIF")])
def test_a_bad_picture_is_refused_as_the_api_refuses_it_and_nothing_is_written(client, world, content):
    sign_in(client, "north_admin")
    before = counts()
    data = {**item_form(world["north"]), "picture": (io.BytesIO(content), "x.png")}
    response = post(client, "/console/market/items/new", data, content_type="multipart/form-data")
    assert response.status_code == 422 and 'data-field="picture"' in text(response)
    assert any(m in text(response) for m in ("不是有效的图片文件", "图片宽高应在", "图片格式应为"))
    assert counts() == before


def test_the_admin_edits_his_item_and_uploads_a_new_picture(client, world, bag):
    sign_in(client, "north_admin")
    page = text(client.get(f"/console/market/items/{bag.id}/edit"))
    assert 'value="党徽"' in page and "北门社区" in page
    data = {**item_form(world["north"], name="党徽（金色）", price="9", on_shelf=""),
            "picture": (io.BytesIO(png()), "badge.png")}
    response = post(client, f"/console/market/items/{bag.id}/edit", data, content_type="multipart/form-data",
                    follow_redirects=True)
    assert "已保存" in text(response)
    db.session.expire_all()
    item = db.session.get(MarketItem, bag.id)
    assert (item.name, item.price, item.on_shelf, item.stock) == ("党徽（金色）", Decimal(9), False, 3)
    assert item.picture and item.region_id == world["north"].id


@pytest.mark.parametrize(("price", "message"), [
    ("sNaN", "请输入有效的数字"), ("-sNaN", "请输入有效的数字"), ("NaN", "请输入有效的数字"),
    ("Infinity", "请输入有效的数字"), ("-inf", "请输入有效的数字"),
    ("1e400", "应在 0.01–100000 之间"),  # finite, but too long to round to two places
])
def test_a_price_that_is_no_finite_number_is_refused_on_both_forms_and_nothing_is_written(client, world, bag, price,
                                                                                          message):
    sign_in(client, "north_admin")
    before = counts()
    for url in ("/console/market/items/new", f"/console/market/items/{bag.id}/edit"):
        response = post(client, url, item_form(world["north"], price=price), content_type="multipart/form-data")
        assert response.status_code == 422 and message in text(response), url
        assert text(response).count('class="field-error"') == 1  # one error: nothing ran after the refusal
    assert counts() == before
    db.session.expire_all()
    assert db.session.get(MarketItem, bag.id).price == Decimal(8)


def test_an_admin_of_another_community_cannot_open_or_edit_the_item(client, world, bag):
    # Another scope's item answers like a missing one (404): its existence is not revealed.
    sign_in(client, "south_admin")
    assert client.get(f"/console/market/items/{bag.id}/edit").status_code == 404
    response = post(client, f"/console/market/items/{bag.id}/edit", item_form(world["north"], name="改掉"))
    assert response.status_code == 404
    assert post(client, f"/console/market/items/{bag.id}/stock", {"delta": "5", "reason": "x"}).status_code == 404
    db.session.expire_all()
    assert (db.session.get(MarketItem, bag.id).name, db.session.get(MarketItem, bag.id).stock) == ("党徽", 3)


def test_stock_is_adjusted_with_a_reason_and_never_below_zero(client, world, bag):
    sign_in(client, "north_admin")
    done = post(client, f"/console/market/items/{bag.id}/stock", {"delta": "5", "reason": "新到货"},
                follow_redirects=True)
    assert "库存已调整为 8" in text(done)
    too_many = post(client, f"/console/market/items/{bag.id}/stock", {"delta": "-9", "reason": "盘点"})
    assert too_many.status_code == 409 and "调整后库存不能小于 0" in text(too_many)
    no_reason = post(client, f"/console/market/items/{bag.id}/stock", {"delta": "1", "reason": ""})
    assert no_reason.status_code == 422 and "请填写调整原因" in text(no_reason)
    rows = db.session.scalars(sa.select(StockAdjustment)).all()
    assert [(row.delta, row.stock_after, row.reason) for row in rows] == [(5, 8, "新到货")]


def test_the_forms_refuse_a_post_without_its_csrf_token(client, world, bag):
    sign_in(client, "north_admin")
    before = counts()
    for url, data in (("/console/market/items/new", item_form(world["north"])),
                      (f"/console/market/items/{bag.id}/edit", item_form(world["north"], name="改掉")),
                      (f"/console/market/items/{bag.id}/stock", {"delta": "5", "reason": "新到货"})):
        response = client.post(url, data=data)
        assert response.status_code == 400 and "CSRF" in text(response)
    assert counts() == before


def test_an_open_order_shows_its_pickup_code_as_a_qr_and_a_scan_hands_it_over(client, world, bag):
    fund(world["alice"], 30)
    order = place_order(principal_of(world["users"]["alice"]), OrderRequest(bag.id, 1))
    sign_in(client, "south_admin")
    assert client.get(f"/console/market/orders/{order.id}").status_code == 404
    client.post("/console/logout", data={"csrf_token": ""})
    sign_in(client, "north_admin")
    assert f'/console/market/orders/{order.id}' in text(client.get("/console/market"))
    page = text(client.get(f"/console/market/orders/{order.id}"))
    assert f'data-code="{order.open_code}"' in page and "<svg" in page
    scanned = f"https://points.example/pickup?code={order.open_code}"
    done = post(client, "/console/market/pickup", {"code": scanned}, follow_redirects=True)
    assert "已交付" in text(done)
    db.session.expire_all()
    assert db.session.get(MarketOrder, order.id).state == OrderState.PICKED_UP
    assert "<svg" not in text(client.get(f"/console/market/orders/{order.id}"))


def test_saving_an_item_unchanged_keeps_its_window_to_the_minute(client, world):
    start = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    item = make_item(world["north"], name="春联", visible_from=start, visible_until=start + timedelta(days=30))
    db.session.commit()
    sign_in(client, "north_admin")
    page = text(client.get(f"/console/market/items/{item.id}/edit"))
    assert 'value="2026-12-01T08:00"' in page and 'value="2026-12-31T08:00"' in page
    data = item_form(world["north"], name="春联", price="10", stock="", limit_per_member="",
                     visible_from="2026-12-01T08:00", visible_until="2026-12-31T08:00", description="")
    assert post(client, f"/console/market/items/{item.id}/edit", data).status_code == 302
    db.session.expire_all()
    saved = db.session.get(MarketItem, item.id)
    assert (saved.visible_from, saved.visible_until) == (start, start + timedelta(days=30))
    update = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "market.item_update"))
    assert update is None  # nothing changed: nothing written, nothing audited
