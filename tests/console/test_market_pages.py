"""积分超市 console: the items page shows pictures, stock and sales; the pick-up form hands an order over."""

from __future__ import annotations

from decimal import Decimal

from points_service.db import db, utcnow
from points_service.domain.market.orders import OrderRequest, place_order
from points_service.domain.periods import PeriodKind, period_containing
from points_service.models import MarketOrder, OrderState
from tests.console.helpers import post, sign_in, text
from tests.factories.market import fund, make_item, principal_of


def test_the_community_admin_sees_his_items_and_hands_an_order_over_by_code(client, world):
    item = make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=4, picture=None)
    make_item(world["south"], name="南门水杯")
    db.session.commit()
    fund(world["alice"], 30)
    order = place_order(principal_of(world["users"]["alice"]), OrderRequest(item.id, 1))
    sign_in(client, "north_admin")

    page = text(client.get("/console/market"))
    assert "环保购物袋" in page and "南门水杯" not in page and world["alice"].name in page

    wrong = post(client, "/console/market/pickup", {"code": "ZZZZZZ"}, follow_redirects=True)
    assert "取货码无效" in text(wrong)
    done = post(client, "/console/market/pickup", {"code": order.open_code.lower()}, follow_redirects=True)
    assert "已交付" in text(done)
    db.session.expire_all()
    assert db.session.get(MarketOrder, order.id).state == OrderState.PICKED_UP


def test_members_and_secretaries_have_no_market_desk(client, world):
    sign_in(client, "secretary")
    assert client.get("/console/market").status_code == 403


def test_the_monthly_report_charts_points_redeemed_per_community_of_his_scope(client, world):
    item = make_item(world["street"], price=Decimal(4), stock=None)
    db.session.commit()
    fund(world["alice"], 30)
    fund(world["bob"], 30)
    for who in ("alice", "bob"):
        place_order(principal_of(world["users"][who]), OrderRequest(item.id, 2))
    sign_in(client, "north_admin")
    page = text(client.get("/console/market/report"))
    assert "北门社区" in page and "南门社区" not in page and 'id="redemption-chart"' in page
    assert "<td>8</td>" in page  # alice's 2 × 4 points



def test_a_year_or_a_quarter_in_the_month_box_shows_this_months_report_not_an_empty_one(client, world):
    item = make_item(world["north"], price=Decimal(4), stock=None)
    db.session.commit()
    fund(world["alice"], 30)
    place_order(principal_of(world["users"]["alice"]), OrderRequest(item.id, 2))
    this_month = period_containing(utcnow(), PeriodKind.MONTH)
    sign_in(client, "north_admin")
    for typed in (this_month.key[:4], f"{this_month.key[:4]}-Q{(this_month.start_date.month - 1) // 3 + 1}"):
        page = text(client.get(f"/console/market/report?month={typed}"))
        assert f"积分超市月报 · {this_month.key}" in page and "<td>8</td>" in page, typed

def test_two_communities_of_one_name_are_two_rows_of_the_report_each_shown_with_its_code(client, world):
    world["south"].name = world["north"].name  # two 北门社区, in different streets as it happens in a city
    north_item = make_item(world["north"], price=Decimal(10), stock=None)
    south_item = make_item(world["south"], price=Decimal(7), stock=None)
    db.session.commit()
    fund(world["alice"], 30)
    fund(world["bob"], 30)
    place_order(principal_of(world["users"]["alice"]), OrderRequest(north_item.id, 1))
    place_order(principal_of(world["users"]["bob"]), OrderRequest(south_item.id, 1))
    sign_in(client, "admin")
    page = text(client.get("/console/market/report"))
    for community, points in ((world["north"], 10), (world["south"], 7)):
        assert f"<tr><td>北门社区（{community.code}）</td><td>1</td><td>1</td>\n  <td>{points}</td>" in page
    assert "<td>17</td>" not in page  # not one row of both
