"""What the API fuzzer (tests/api/test_fuzz_openapi.py) found, each pinned by a focused test: inputs that once
reached the database unvalidated or answers that did not match the OpenAPI document."""

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.market.catalogue import set_picture
from tests.factories import auth_header, make_world
from tests.factories.annual import YEAR, settled
from tests.factories.fuzz import png
from tests.factories.market import make_item

PAST_INT4 = 2**40  # past PostgreSQL's INTEGER (a 500 there before), within JSON's 18 digits


@pytest.fixture
def world(app):
    return make_world()


def as_user(world, who: str = "alice") -> dict:
    return auth_header(world["users"][who])


def test_a_policy_version_past_a_row_id_is_a_field_error_not_a_500(client, world):
    response = client.get("/api/v1/policy", query_string={"version": 2**63}, headers=as_user(world))
    assert response.status_code == 422
    assert "version" in response.get_json()["data"]["errors"]


def documented_content_types(client, path: str, method: str, status: str) -> set[str]:
    spec = client.get("/api/openapi.json").get_json()
    return set(spec["paths"][path][method]["responses"][status]["content"])


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_each_annual_export_format_answers_a_documented_content_type(client, world, fmt):
    settled(world)
    response = client.get(f"/api/v1/annual/{YEAR}/scores", query_string={"format": fmt},
                          headers=as_user(world, "admin"))
    assert response.status_code == 200 and response.get_data()
    response.close()  # a CSV export streams inside its request context
    assert response.mimetype in documented_content_types(client, "/api/v1/annual/{year}/scores", "get", "200")


def test_a_served_item_picture_has_a_documented_content_type(client, world, app, tmp_path):
    app.instance_path = str(tmp_path)
    item = make_item(world["north"])
    db.session.commit()
    name = set_picture(principal_for(world["users"]["admin"]), item.id, png()).picture
    response = client.get(f"/api/v1/shop/pictures/{name}")
    assert (response.status_code, response.mimetype) == (200, "image/png")
    assert response.mimetype in documented_content_types(client, "/api/v1/shop/pictures/{name}", "get", "200")


def out_of_range(response, field: str) -> bool:
    """A 422 naming ``field`` with the row-id range: refused by the schema, before any statement ran."""
    errors = response.get_json()["data"]["errors"]
    return response.status_code == 422 and any("2147483647" in message for message in errors.get(field, []))


def test_an_order_for_an_item_id_past_a_row_id_is_a_field_error_not_a_500(client, world):
    response = client.post("/api/v1/shop/orders", json={"item_id": PAST_INT4, "quantity": 1}, headers=as_user(world))
    assert out_of_range(response, "item_id")


def test_an_item_for_a_region_id_past_a_row_id_is_a_field_error_not_a_500(client, world):
    body = {"region_id": PAST_INT4, "name": "环保购物袋", "price": 10}
    response = client.post("/api/v1/shop/items", json=body, headers=as_user(world, "admin"))
    assert out_of_range(response, "region_id")


@pytest.mark.parametrize("field", ["branch_id", "community_id", "grid_id"])
def test_a_transfer_to_an_id_past_a_row_id_is_a_field_error_not_a_500(client, world, field):
    response = client.post(f"/api/v1/members/{world['alice'].id}/transfer", json={field: PAST_INT4},
                           headers=as_user(world, "admin"))
    assert out_of_range(response, field)
