"""The OpenAPI error schema documents the envelope every error response really has."""

from __future__ import annotations


def test_the_documented_error_schema_is_the_envelope_with_a_string_code(client):
    spec = client.get("/api/openapi.json").get_json()
    error = spec["components"]["schemas"]["ErrorEnvelope"]
    assert error["properties"]["code"]["type"] == "string"
    assert set(error["properties"]) == {"code", "message", "data", "request_id"}
    real = client.post("/api/v1/auth/login", json={}).get_json()
    assert set(real) == set(error["properties"]) and isinstance(real["code"], str)
    assert "errors" in real["data"]
