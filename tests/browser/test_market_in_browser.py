"""积分超市 end to end in a real browser: the community admin adds an item with a picture in the console, a
member orders it through the API, the admin hands it over at the desk by typing the code as a scanner does
(Enter submits), and the balance and the stock agree on both sides."""

from __future__ import annotations

import io

import requests
from PIL import Image
from playwright.sync_api import expect

from points_service.db import db
from points_service.models import Member
from tests.browser.live import bearer, sign_in
from tests.factories import PASSWORD
from tests.factories.market import fund


def test_an_item_added_in_the_console_is_ordered_through_the_api_and_handed_over_at_the_desk(page, live, tmp_path):
    with live.app.app_context():
        fund(db.session.get(Member, live.data["alice"]), 50)
    picture = tmp_path / "bag.png"
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), (180, 20, 20)).save(buffer, "PNG")
    picture.write_bytes(buffer.getvalue())

    sign_in(page, live.url, "north_admin", PASSWORD)
    page.goto(f"{live.url}/console/market")
    page.click("#add-item")
    page.select_option("select[name=region_id]", label="北门社区（社区）")
    page.fill("input[name=name]", "环保购物袋")
    page.fill("input[name=price]", "12")
    page.fill("input[name=stock]", "5")
    page.set_input_files("input[name=picture]", str(picture))
    page.click("#item-form button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("环保购物袋")
    row = page.locator("tr", has_text="环保购物袋")
    expect(row.locator("img")).to_be_visible()
    item_id = int(row.get_attribute("id").removeprefix("item-"))

    member = bearer(live.app, live.data["alice_user"])
    catalogue = requests.get(f"{live.url}/api/v1/shop/items?scope=community", headers=member, timeout=10).json()
    offered = next(item for item in catalogue["data"]["items"] if item["id"] == item_id)
    assert offered["picture_url"] and requests.get(f"{live.url}{offered['picture_url']}", timeout=10).ok
    placed = requests.post(f"{live.url}/api/v1/shop/orders", json={"item_id": item_id, "quantity": 2},
                           headers={**member, "Idempotency-Key": "browser-order-0001"}, timeout=10)
    assert placed.status_code == 201, placed.text
    order = placed.json()["data"]

    page.goto(f"{live.url}/console/market/orders/{order['id']}")
    expect(page.locator("#pickup-qr svg")).to_be_visible()
    assert page.locator("#pickup-qr").get_attribute("data-code") == order["pickup_code"]
    page.goto(f"{live.url}/console/market")
    page.locator("#pickup-code").press_sequentially(order["pickup_code"].lower())
    page.locator("#pickup-code").press("Enter")  # what a scanner sends after the code
    expect(page.locator(".flash-ok")).to_contain_text("已交付")
    expect(page.locator(f"#order-{order['id']}")).to_have_count(0)
    expect(page.locator(f"#item-{item_id} .stock")).to_have_text("3")
    expect(page.locator(f"#item-{item_id} .sold")).to_have_text("2")

    me = requests.get(f"{live.url}/api/v1/me", headers=member, timeout=10).json()["data"]["points"]
    assert (me["redeemable"], me["open_orders"]) == (26, 0)
    detail = requests.get(f"{live.url}/api/v1/shop/items/{item_id}", headers=member, timeout=10).json()["data"]
    assert detail["stock"] == 3
    orders = requests.get(f"{live.url}/api/v1/me/orders", headers=member, timeout=10).json()["data"]["items"]
    assert [o["state"] for o in orders] == ["picked_up"]
    page.goto(f"{live.url}/console/members/{live.data['alice']}")
    expect(page.locator("#redeemable")).to_have_text("26")
