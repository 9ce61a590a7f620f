"""API.md conventions: the envelope, error codes, bad input never a 500, health, OpenAPI docs."""

from __future__ import annotations

import json

import pytest

from tests.factories import auth_header, make_world


def test_unknown_route_answers_not_found_in_the_envelope(client):
    body = client.get("/api/v1/nothing-here").get_json()
    assert body["code"] == "not_found" and body["message"] and body["request_id"]


def test_wrong_method_answers_405_with_allow_header(client):
    response = client.get("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("raw", [
    '{"username": "a", "password": NaN}',
    '{"username": "a", "password": Infinity}',
    '{"username": "a", "password": 1e400}',
    '{"username": "a", "password": ' + "9" * 5000 + "}",
    "[" * 5000 + "]" * 5000,
    '{"username": "a",',
    "\xff\xfe",
])
def test_malformed_json_is_a_400_never_a_500(client, raw):
    response = client.post("/api/v1/auth/login", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "malformed_json"


def test_nesting_beyond_the_limit_is_refused_even_when_python_could_parse_it(client):
    nested: list = [1]
    for _ in range(40):
        nested = [nested]
    raw = json.dumps({"username": "a", "password": "b", "x": nested})
    assert client.post("/api/v1/auth/login", data=raw, content_type="application/json").status_code == 400


def test_wrong_types_and_unknown_fields_are_422_with_each_field_named(client):
    response = client.post("/api/v1/auth/login", json={"username": True, "password": 5, "role": "admin"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert set(body["data"]["errors"]) == {"username", "password", "role"}


def test_missing_required_fields_are_named(client):
    body = client.post("/api/v1/auth/login", json={}).get_json()
    assert set(body["data"]["errors"]) == {"username", "password"}


def test_wrong_content_type_is_415(client):
    response = client.post("/api/v1/auth/login", data="username=a&password=b",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


def test_oversized_body_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/api/v1/auth/login", data=json.dumps({"username": "a" * 4000, "password": "b"}),
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_request_id_is_echoed_when_the_client_sends_a_sane_one(client):
    response = client.get("/api/v1/me", headers={"X-Request-ID": "mini-program-123456"})
    assert response.headers["X-Request-ID"] == "mini-program-123456"
    assert response.get_json()["request_id"] == "mini-program-123456"


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["database"] == "ok"


def test_openapi_document_and_swagger_ui_assets_are_served_locally(client):
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/v1/me" in spec["paths"]
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "//cdn" not in page and "unpkg" not in page
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_success_responses_use_the_envelope(client, app):
    world = make_world()
    body = client.get("/api/v1/me", headers=auth_header(world["users"]["alice"])).get_json()
    assert body["code"] == "ok" and body["message"] == "成功" and body["data"]["member"]["name"] == "张晓丽"


def test_page_size_is_capped_at_100(client, app):
    world = make_world()
    body = client.get("/api/v1/regions?page_size=5000", headers=auth_header(world["users"]["admin"])).get_json()
    assert body["data"]["page_size"] == 100


def test_field_errors_are_chinese_sentences(client):
    body = client.post("/api/v1/auth/login", json={"username": 5, "extra": 1}).get_json()
    assert body["data"]["errors"] == {"username": ["应为文本"], "password": ["缺少必填字段"], "extra": ["未知字段"]}


def test_unknown_query_parameters_are_refused_like_unknown_body_fields(client, app):
    world = make_world()
    response = client.get("/api/v1/members?branch=1", headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 422 and response.get_json()["data"]["errors"] == {"branch": ["未知字段"]}
