"""Days and instants in requests stay within the years the service keys periods by (2000–2200): beyond them an
instant cannot always be converted to UTC or to +08:00, and before 1901 Asia/Shanghai is local mean time, which
RFC 3339 cannot write. Each is a 422 field error, and nothing is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import CalendarDay, MarketItem, Member, ScheduledMemberChange
from tests.factories import auth_header, make_world
from tests.factories.market import make_item


@pytest.fixture
def world(app):
    world = make_world()
    world["item"] = make_item(world["north"])
    db.session.commit()
    return world


def as_admin(world) -> dict:
    return auth_header(world["users"]["admin"])


def field_error(response, field: str) -> bool:
    body = response.get_json()
    return response.status_code == 422 and field in body["data"]["errors"] and body["code"] == "validation_failed"


def items() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(MarketItem))


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "9999-12-31"])
def test_a_deactivation_dated_outside_the_years_is_a_field_error_and_changes_nothing(client, world, day):
    response = client.post(f"/api/v1/members/{world['carol'].id}/deactivate", headers=as_admin(world),
                           json={"reason_code": "retired", "reason": "到龄", "effective_on": day})
    assert field_error(response, "effective_on")
    db.session.expire_all()
    assert db.session.get(Member, world["carol"].id).is_active
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ScheduledMemberChange)) == 0


def test_a_transfer_dated_in_year_one_is_a_field_error(client, world):
    response = client.post(f"/api/v1/members/{world['bob'].id}/transfer", headers=as_admin(world),
                           json={"community_id": world["south"].id, "effective_on": "0001-01-01"})
    assert field_error(response, "effective_on")


@pytest.mark.parametrize("day", ["0001-01-01", "1999-12-31", "2201-01-01", "9999-12-31"])
def test_a_calendar_day_outside_the_years_is_a_field_error_and_not_written(client, world, day):
    response = client.put(f"/api/v1/calendar/days/{day}", headers=as_admin(world), json={"working": False})
    assert field_error(response, "day")
    assert response.get_json()["data"]["errors"]["day"] == ["须在 2000 年至 2200 年之间"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarDay)) == 0


@pytest.mark.parametrize("field, value", [
    ("visible_until", "9999-12-31T20:00:00+00:00"),  # stored, it broke every list showing the item
    ("visible_until", "9999-12-31T23:59:59-14:00"),  # past year 9999 in UTC
    ("visible_from", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
    ("visible_from", "1900-01-01T00:00:00+08:00"),  # local mean time in Asia/Shanghai: +08:05:43
])
def test_an_item_visible_outside_the_years_is_a_field_error_and_not_written(client, world, field, value):
    before = items()
    response = client.post("/api/v1/shop/items", headers=as_admin(world),
                           json={"region_id": world["north"].id, "name": "远期商品", "price": 1, field: value})
    assert field_error(response, field)
    patched = client.patch(f"/api/v1/shop/items/{world['item'].id}", headers=as_admin(world), json={field: value})
    assert field_error(patched, field)
    assert items() == before


@pytest.mark.parametrize("path", ["/api/v1/activities", "/api/v1/approvals"])
@pytest.mark.parametrize("arg, value", [("from", "9999-12-31T23:59:59-14:00"), ("to", "0001-01-01T00:00:00+14:00")])
def test_a_list_from_or_to_an_instant_outside_the_years_is_a_field_error(client, world, path, arg, value):
    assert field_error(client.get(path, query_string={arg: value}, headers=as_admin(world)), arg)


def test_the_first_and_last_instants_of_the_years_are_accepted_and_answered_as_sent(client, world):
    bounds = {"visible_from": "2000-01-01T00:00:00+08:00", "visible_until": "2200-12-31T23:59:59+08:00"}
    response = client.patch(f"/api/v1/shop/items/{world['item'].id}", headers=as_admin(world), json=bounds)
    assert response.status_code == 200
    assert {name: response.get_json()["data"][name] for name in bounds} == bounds
