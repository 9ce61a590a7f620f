"""JWT handling per RFC 8725: pinned algorithm and key, checked exp/iat/type, short access tokens, and
refresh-token rotation where a reused token revokes its whole family. Errors keep the envelope."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry
from tests.factories import PASSWORD, make_user

ME = "/api/v1/me"
REFRESH = "/api/v1/auth/refresh"
ENVELOPE_KEYS = {"code", "message", "data", "request_id"}


@pytest.fixture
def user(app):
    user = make_user(username="console1")
    db.session.commit()
    return user


@pytest.fixture
def pair(client, user) -> dict:
    response = client.post("/api/v1/auth/login", json={"username": "console1", "password": PASSWORD})
    return response.get_json()["data"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def verified(app, token: str) -> dict:
    return jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])


def access_claims(user, **changes) -> dict:
    now = int(time.time())
    claims = {"sub": f"u:{user.id}", "type": "access", "fresh": False, "jti": uuid.uuid4().hex,
              "iat": now, "nbf": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def forge(app, claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def unsigned(claims: dict) -> str:
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode({'alg': 'none', 'typ': 'JWT'})}.{encode(claims)}."


def assert_refused(response, status: int = 401, code: str | None = None) -> None:
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == ENVELOPE_KEYS and body["message"] and body["data"] is None
    if code:
        assert body["code"] == code


def test_access_tokens_live_at_most_15_minutes_and_say_what_they_are(app, pair):
    access, refresh = verified(app, pair["access_token"]), verified(app, pair["refresh_token"])
    assert 0 < access["exp"] - access["iat"] <= 15 * 60
    assert (access["type"], refresh["type"]) == ("access", "refresh")
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "HS256"


def test_a_well_formed_token_signed_with_our_key_is_accepted(app, client, user):
    # The forging helper itself must produce acceptable tokens, or the refusals below prove nothing.
    assert client.get(ME, headers=bearer(forge(app, access_claims(user)))).status_code == 200


def test_an_unsigned_alg_none_token_is_refused(app, client, user):
    assert_refused(client.get(ME, headers=bearer(unsigned(access_claims(user)))))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_signed_with_another_algorithm_is_refused_even_with_our_key(app, client, user):
    assert_refused(client.get(ME, headers=bearer(forge(app, access_claims(user), algorithm="HS512"))))


def test_a_token_signed_with_another_key_is_refused(app, client, user):
    token = forge(app, access_claims(user), key="someone-else's-key-0123456789abcdef")
    assert_refused(client.get(ME, headers=bearer(token)), code="token_invalid")


def test_a_tampered_subject_breaks_the_signature(app, client, user, pair):
    header, payload, signature = pair["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "u:999"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_refused(client.get(ME, headers=bearer(f"{header}.{forged}.{signature}")))


def test_an_expired_token_is_401_token_expired(app, client, user):
    past = int(time.time()) - 3600
    token = forge(app, access_claims(user, iat=past, nbf=past, exp=past + 900))
    assert_refused(client.get(ME, headers=bearer(token)), code="token_expired")


def test_a_token_issued_in_the_future_is_refused(app, client, user):
    future = int(time.time()) + 3600
    assert_refused(client.get(ME, headers=bearer(forge(app, access_claims(user, iat=future, exp=future + 600)))))


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_a_token_without_exp_or_iat_is_refused_even_with_our_signature(app, client, user, missing):
    assert_refused(client.get(ME, headers=bearer(forge(app, access_claims(user, **{missing: None})))))


@pytest.mark.parametrize("subject", ["u:abc", "u:", "u:١", "x:1", "admin", "w:abc"])
def test_a_signed_token_with_a_nonsense_subject_is_refused_not_a_crash(app, client, user, subject):
    token = forge(app, access_claims(user, sub=subject))
    assert_refused(client.get(ME, headers=bearer(token)), code="token_invalid")
    bind = client.post("/api/v1/auth/bind", json={"name": "张三", "phone": "13800138000"}, headers=bearer(token))
    assert_refused(bind, code="token_invalid")


def test_a_token_for_a_deactivated_account_is_refused(app, client, user, pair):
    user.is_active = False
    db.session.commit()
    assert_refused(client.get(ME, headers=bearer(pair["access_token"])), code="token_invalid")


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "bearer a.b.c"])
def test_missing_or_garbled_authorization_is_401_in_the_envelope(client, user, header):
    assert_refused(client.get(ME, headers={"Authorization": header} if header else {}))


def test_a_refresh_token_is_not_an_access_token(client, pair):
    assert_refused(client.get(ME, headers=bearer(pair["refresh_token"])))


def test_an_access_token_cannot_refresh(client, pair):
    assert_refused(client.post(REFRESH, headers=bearer(pair["access_token"])))


def test_refreshing_returns_a_new_working_pair(app, client, pair):
    response = client.post(REFRESH, headers=bearer(pair["refresh_token"]))
    assert response.status_code == 200
    fresh = response.get_json()["data"]
    assert fresh["refresh_token"] != pair["refresh_token"] and fresh["access_token"] != pair["access_token"]
    assert verified(app, fresh["refresh_token"])["fam"] == verified(app, pair["refresh_token"])["fam"]
    assert client.get(ME, headers=bearer(fresh["access_token"])).status_code == 200


def test_a_reused_refresh_token_revokes_its_whole_family(app, client, pair, token_clock):
    rotated = client.post(REFRESH, headers=bearer(pair["refresh_token"])).get_json()["data"]
    token_clock.advance(app.config["REFRESH_REUSE_GRACE_SECONDS"])  # past the retry grace
    assert_refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])), code="refresh_token_reused")
    # The thief or the owner may hold the rotated token: neither may continue the family.
    assert_refused(client.post(REFRESH, headers=bearer(rotated["refresh_token"])), code="refresh_token_reused")
    reuse = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "token.reuse")).all()
    assert len(reuse) == 1 and reuse[0].result == "revoked"


def test_a_reuse_in_one_family_leaves_other_logins_alone(app, client, user, pair, token_clock):
    other = client.post("/api/v1/auth/login", json={"username": "console1", "password": PASSWORD})
    other = other.get_json()["data"]
    client.post(REFRESH, headers=bearer(pair["refresh_token"]))
    token_clock.advance(app.config["REFRESH_REUSE_GRACE_SECONDS"])
    assert client.post(REFRESH, headers=bearer(pair["refresh_token"])).get_json()["code"] == "refresh_token_reused"
    assert client.post(REFRESH, headers=bearer(other["refresh_token"])).status_code == 200


def test_an_expired_refresh_token_is_refused(app, client, user):
    past = int(time.time()) - 3600
    token = forge(app, access_claims(user, type="refresh", iat=past, nbf=past, exp=past + 60, fam="f", jti="j"))
    assert_refused(client.post(REFRESH, headers=bearer(token)), code="token_expired")


def test_a_refresh_token_the_server_never_issued_is_refused(app, client, user):
    token = forge(app, access_claims(user, type="refresh", fam=uuid.uuid4().hex))
    assert_refused(client.post(REFRESH, headers=bearer(token)))


def test_a_deactivated_account_cannot_refresh_and_its_family_dies(client, user, pair):
    user.is_active = False
    db.session.commit()
    assert_refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])), status=403, code="account_disabled")
    user.is_active = True
    db.session.commit()
    assert_refused(client.post(REFRESH, headers=bearer(pair["refresh_token"])), code="refresh_token_reused")
