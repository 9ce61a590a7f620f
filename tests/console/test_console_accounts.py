"""用户与授权: an admin disables and enables a console account by a form post carrying its CSRF token; the state
shows in the list and on the account's page; the disabled account's console session ends at its next request and
does not come back when the account is enabled again."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g

from points_service.db import db
from points_service.models import AuditEntry, User
from tests.console.helpers import post, sign_in, text


def account(world, name: str) -> User:
    db.session.expire_all()
    return db.session.get(User, world["users"][name].id)


def page_of(world, name: str) -> str:
    return f"/console/admin/users/{world['users'][name].id}"


def home_status(browser, *, signing_in: str | None = None) -> int:
    """Another browser's request. Requests run in the test's application context, whose ``g`` is where Flask-WTF
    keeps the CSRF token it last signed: the other browser's is dropped after use, as a new request would."""
    if signing_in:
        sign_in(browser, signing_in)
    status = browser.get("/console/").status_code
    g.pop("csrf_token", None)
    return status


def test_an_admin_disables_an_account_and_its_console_session_ends_at_once(app, client, world):
    other = app.test_client()
    assert home_status(other, signing_in="secretary") == 200
    sign_in(client, "admin")
    assert "停用</button>" in text(client.get(page_of(world, "secretary")))
    response = post(client, f"{page_of(world, 'secretary')}/disable", {"reason": "调离岗位"})
    assert response.status_code == 302
    assert "已停用该账号" in text(client.get(response.headers["Location"]))
    assert account(world, "secretary").is_active is False
    assert home_status(other) == 302
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.disable"))
    assert entry.actor_id == world["users"]["admin"].id and entry.detail == {"reason": "调离岗位"}
    listed = text(client.get("/console/admin/users?name=secretary"))
    assert "<td>停用</td>" in listed
    assert "启用</button>" in text(client.get(page_of(world, "secretary")))


def test_an_enabled_account_signs_in_afresh_its_old_session_stays_ended(app, client, world):
    other = app.test_client()
    assert home_status(other, signing_in="secretary") == 200
    sign_in(client, "admin")
    post(client, f"{page_of(world, 'secretary')}/disable")
    response = post(client, f"{page_of(world, 'secretary')}/enable")
    assert "已启用该账号" in text(client.get(response.headers["Location"]))
    assert account(world, "secretary").is_active is True
    assert home_status(other) == 302
    assert home_status(other, signing_in="secretary") == 200


def test_a_post_without_its_csrf_token_changes_nothing(client, world):
    sign_in(client, "admin")
    response = client.post(f"{page_of(world, 'secretary')}/disable", data={"reason": "x"})
    assert response.status_code == 400 and "CSRF" in text(response)
    assert account(world, "secretary").is_active is True


def test_an_admin_sees_no_button_for_his_own_account_and_a_forged_post_is_refused(client, world):
    sign_in(client, "admin")
    page = text(client.get(page_of(world, "admin")))
    assert "不能停用自己的账号" in page and "停用</button>" not in page
    response = post(client, f"{page_of(world, 'admin')}/disable")
    assert "不能停用自己的账号" in text(client.get(response.headers["Location"]))
    assert account(world, "admin").is_active is True


def test_a_community_admin_cannot_disable_anyone(client, world):
    sign_in(client, "north_admin")
    post(client, f"{page_of(world, 'secretary')}/disable")
    assert account(world, "secretary").is_active is True


def test_an_overlong_reason_is_refused_with_its_message(client, world):
    sign_in(client, "admin")
    response = post(client, f"{page_of(world, 'secretary')}/disable", {"reason": "很" * 201})
    assert "200" in text(client.get(response.headers["Location"]))
    assert account(world, "secretary").is_active is True


def test_a_members_account_page_offers_no_switch(client, world):
    sign_in(client, "admin")
    page = text(client.get(page_of(world, "alice")))
    assert "随党员身份停用和恢复" in page and "停用</button>" not in page
