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
