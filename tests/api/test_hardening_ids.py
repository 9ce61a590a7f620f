"""Ids beyond any row's range name nothing: 404 in a path, 422 in a body or query, never a 500."""

from __future__ import annotations

import pytest

from points_service.api.fields import MAX_ROW_ID
from tests.factories import auth_header, make_world

HUGE_IDS = [MAX_ROW_ID + 1, 2**63, 2**64 + 7]
BODY = {"reason": "核对后冲正"}  # what the POSTs need, so that only the id decides


@pytest.fixture
def admin(app):
    world = make_world()
    return auth_header(world["users"]["admin"])


@pytest.mark.parametrize("huge", HUGE_IDS)
@pytest.mark.parametrize("method, template", [
    ("get", "/api/v1/activities/{id}"),
    ("get", "/api/v1/members/{id}"),
    ("get", "/api/v1/members/{id}/ledger"),
    ("get", "/api/v1/stars/runs/{id}/candidates"),
    ("post", "/api/v1/ledger/{id}/reverse"),
    ("post", "/api/v1/reports/{id}/reject"),
])
def test_a_path_id_past_the_row_range_is_a_404_like_a_missing_one(client, admin, method, template, huge):
    missing = getattr(client, method)(template.format(id=MAX_ROW_ID), headers=admin, json=BODY)
    beyond = getattr(client, method)(template.format(id=huge), headers=admin, json=BODY)
    assert missing.status_code == beyond.status_code == 404
    assert missing.get_json()["code"] == beyond.get_json()["code"] == "not_found"


def test_the_openapi_document_states_the_path_id_bound(client):
    spec = client.get("/api/openapi.json").get_json()
    (parameter,) = spec["paths"]["/api/v1/activities/{activity_id}"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}


@pytest.mark.parametrize("huge", [MAX_ROW_ID + 1, 2**40])
def test_a_body_id_past_the_row_range_is_a_field_error(client, admin, huge):
    response = client.post("/api/v1/adjustments", headers=admin,
                           json={"subject_type": "member", "subject_id": huge, "points": 1, "reason": "测试"})
    assert response.status_code == 422
    assert "subject_id" in response.get_json()["data"]["errors"]


def test_a_query_id_past_the_row_range_is_a_field_error(client, admin):
    response = client.get(f"/api/v1/members?branch_id={2**40}", headers=admin)
    assert response.status_code == 422
    assert "branch_id" in response.get_json()["data"]["errors"]
