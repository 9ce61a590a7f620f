"""Signing in and out of the console, CSRF on every form post (the API keeps bearer tokens), the cookie's
flags, and that every page needs a signed-in user."""

from __future__ import annotations

import sqlalchemy as sa

from config.settings import Production
from points_service.db import db
from points_service.models import AuditEntry, Record, RecordStatus
from tests.console.helpers import csrf_token, post, sign_in, text
from tests.factories import PASSWORD
from tests.factories.records import self_report


def test_a_page_without_a_session_sends_the_browser_to_the_sign_in_page(client, world):
    response = client.get("/console/approvals?status=pending")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=/console/approvals")


def test_signing_in_with_the_right_password_opens_the_home_page_with_the_users_roles(client, world):
    response = sign_in(client, "secretary")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    home = text(client.get("/console/"))
    assert "财政局第一党支部 · 支部书记" in home
    assert "审批" in home and "用户与授权" not in home  # the menu follows the roles


def test_a_wrong_password_is_refused_in_chinese_and_audited_without_a_session(client, world):
    response = sign_in(client, "secretary", "wrong-password-1")
    assert response.status_code == 401
    assert "用户名或密码错误" in text(response)
    assert client.get("/console/").status_code == 302
    failures = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "login",
                                                              AuditEntry.result == "failed")).all()
    assert len(failures) == 1


def test_the_sign_in_never_redirects_to_another_site(client, world):
    token = csrf_token(client)
    response = client.post("/console/login", data={"username": "admin", "password": "correct-horse-42",
                                                   "csrf_token": token, "next": "https://evil.example/x"})
    assert response.headers["Location"] == "/console/"


def sign_in_to(client, target: str):
    client.delete_cookie("points_console")
    token = csrf_token(client)
    return client.post("/console/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                               "next": target})


def test_a_next_page_with_a_control_character_or_a_backslash_signs_in_to_the_home_page(client, world):
    for target in ("/console/\r\nSet-Cookie: x=y", "/console/\nX: y", "/console/\x00", "/console/\x7f",
                   "/console/\x85", "/console/\\\\evil.example"):
        response = sign_in_to(client, target)
        assert (response.status_code, response.headers["Location"]) == (302, "/console/"), repr(target)
    kept = sign_in_to(client, "/console/approvals?status=pending")
    assert kept.headers["Location"] == "/console/approvals?status=pending"  # a plain console path is kept


def test_signing_out_ends_the_session(client, world):
    sign_in(client, "admin")
    assert post(client, "/console/logout").status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_copy_of_the_cookie_kept_from_before_the_sign_out_opens_nothing(client, world):
    sign_in(client, "admin")
    kept = client.get_cookie("points_console").value
    assert client.get("/console/admin/users").status_code == 200
    post(client, "/console/logout")
    client.set_cookie("points_console", kept)  # replayed: validly signed and within its 8 hours
    response = client.get("/console/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")
    logouts = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "logout")).all()
    assert [(entry.actor_id, entry.detail) for entry in logouts] == [(world["users"]["admin"].id, {"via": "console"})]


def test_signing_out_of_the_console_ends_the_other_browsers_sessions_and_the_api_access_tokens(client, app, world):
    tokens = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).get_json()["data"]
    other = app.test_client()
    sign_in(other, "admin")
    sign_in(client, "admin")
    post(client, "/console/logout")
    assert other.get("/console/").status_code == 302
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/me", headers=bearer).get_json()["code"] == "token_invalid"
    renewed = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert renewed.status_code == 200  # the phone renews its tokens without a new sign-in


def test_signing_out_of_the_api_ends_the_console_session(client, world):
    tokens = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).get_json()["data"]
    sign_in(client, "admin")
    client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert client.get("/console/").status_code == 302


def test_a_form_post_without_its_csrf_token_is_refused_and_changes_nothing(client, world):
    record = self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    response = client.post(f"/console/approvals/record:{record.id}/approve", data={})
    assert response.status_code == 400
    assert "CSRF" in text(response)
    db.session.expire_all()
    assert db.session.get(Record, record.id).status == RecordStatus.PENDING


def test_the_api_keeps_bearer_tokens_and_needs_no_csrf_token(client, world):
    response = client.post("/api/v1/auth/login", json={"username": "admin", "password": "correct-horse-42"})
    assert response.status_code == 200
    assert response.get_json()["data"]["access_token"]


def test_a_request_without_the_session_cookie_builds_no_cookie_signer(app, client, world, monkeypatch):
    built = []
    real = app.session_interface.get_signing_serializer
    monkeypatch.setattr(app.session_interface, "get_signing_serializer", lambda a: built.append(1) or real(a))
    assert client.get("/api/v1/me").status_code == 401
    assert built == []
    sign_in(client, "secretary")
    built.clear()
    assert client.get("/console/").status_code == 200  # a signed-in page reads its cookie: signer built
    assert built


def test_a_session_cookie_with_a_bad_signature_is_an_empty_session(client, world):
    sign_in(client, "secretary")
    client.set_cookie("points_console", "forged.value.signature")
    assert client.get("/console/").status_code == 302


def test_the_session_cookie_is_http_only_and_same_site_lax_and_secure_in_production(client, world):
    response = sign_in(client, "admin")
    cookie = response.headers["Set-Cookie"]
    assert "points_console=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert Production.SESSION_COOKIE_SECURE is True


def test_a_disabled_account_loses_its_session_at_the_next_request(client, world):
    sign_in(client, "secretary")
    world["users"]["secretary"].is_active = False
    db.session.commit()
    assert client.get("/console/").status_code == 302


def test_the_vendored_scripts_are_served_locally(client, world):
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/echarts/echarts.min.js",
                 "/console/assets/console.css"):
        assert client.get(path).status_code == 200, path
