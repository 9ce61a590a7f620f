"""An access token is decoded once per request, and what the library's helpers read is still there."""

from __future__ import annotations

import jwt
import pytest
from flask import g
from flask_jwt_extended import get_jwt, get_jwt_header, get_jwt_identity

from points_service.api.security import TokenExpired, TokenInvalid, verify_access_token
from points_service.db import db
from tests.factories import make_user

ME = "/api/v1/me"


@pytest.fixture
def user(app):
    user = make_user(username="decoder1")
    db.session.commit()
    return user


def bearer(app, user) -> dict:
    from flask_jwt_extended import create_access_token
    with app.app_context():
        return {"Authorization": f"Bearer {create_access_token(identity=f'u:{user.id}')}"}


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every parse of a token (PyJWT's decode, decode_complete and get_unverified_header all go through
    PyJWS._load) and every signature check, in order."""
    calls, load, verify = [], jwt.api_jws.PyJWS._load, jwt.api_jws.PyJWS._verify_signature

    def counting_load(self, token):
        calls.append("parse")
        return load(self, token)

    def counting_verify(self, *args, **kwargs):
        calls.append("verify")
        return verify(self, *args, **kwargs)

    monkeypatch.setattr(jwt.api_jws.PyJWS, "_load", counting_load)
    monkeypatch.setattr(jwt.api_jws.PyJWS, "_verify_signature", counting_verify)
    return calls


def test_a_request_with_a_bearer_token_decodes_it_once_with_its_signature(app, client, user, decodes):
    headers = bearer(app, user)
    decodes.clear()
    assert client.get(ME, headers=headers).status_code == 200
    assert decodes == ["parse", "verify"]


def test_the_token_s_claims_and_header_are_where_flask_jwt_extended_s_helpers_look(app, user):
    with app.test_request_context(ME, headers=bearer(app, user)):
        verify_access_token()
        assert get_jwt_identity() == f"u:{user.id}" and get_jwt()["type"] == "access"
        assert get_jwt_header()["alg"] == "HS256" and g._jwt_extended_jwt_location == "headers"


@pytest.mark.parametrize("claims, error", [({"type": "refresh"}, TokenInvalid), ({"exp": 1}, TokenExpired),
                                           ({"iat": None}, TokenInvalid)])
def test_a_refresh_an_expired_or_an_incomplete_token_is_refused_on_the_single_decode(app, user, claims, error):
    import time
    now = int(time.time())
    payload = {"sub": f"u:{user.id}", "type": "access", "iat": now - 60, "exp": now + 600, **claims}
    token = jwt.encode({k: v for k, v in payload.items() if v is not None}, app.config["JWT_SECRET_KEY"])
    with app.test_request_context(ME, headers={"Authorization": f"Bearer {token}"}), pytest.raises(error):
        verify_access_token()
