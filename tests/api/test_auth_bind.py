"""POST /auth/bind: an unbound WeChat identity claims its roster member by name and phone, once."""

from __future__ import annotations

import contextlib
import threading

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.accounts import signin
from points_service.models import AuditEntry, User, WechatIdentity
from tests.concurrency import hammer
from tests.factories import auth_header, make_member, make_user, make_wechat_identity, make_world

BIND = "/api/v1/auth/bind"
ALICE_PHONE = "13800138000"


@pytest.fixture
def world(app):
    """make_world plus a member with a known phone, 张晓红, who has never signed in."""
    world = make_world()
    world["hong"] = make_member(world["fin1"], world["north"], name="张晓红", phone=ALICE_PHONE)
    db.session.commit()
    return world


def wechat_login(client, openid: str) -> dict:
    """Dev-mode login (the testing settings accept ``dev:<openid>``)."""
    response = client.post("/api/v1/auth/wechat", json={"code": f"dev:{openid}"})
    assert response.status_code == 200
    return response.get_json()["data"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def bind(client, token: str, name: str, phone: str):
    return client.post(BIND, json={"name": name, "phone": phone}, headers=bearer(token))


def audit_rows(action: str) -> list[AuditEntry]:
    return db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


@pytest.mark.parametrize("phone", [
    ALICE_PHONE, "１３８００１３８０００", "+86 138 0013 8000", "＋８６１３８００１３８０００",
    "138-0013-8000", "008613800138000",
])
def test_binding_with_name_and_phone_in_any_common_form_returns_the_member(client, world, phone):
    unbound = wechat_login(client, "oHong00001")
    response = bind(client, unbound["access_token"], "张晓红", phone)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["needs_binding"] is False and data["member"]["id"] == world["hong"].id
    assert data["member"]["phone"] == "138****8000"


def test_after_binding_the_new_token_reaches_me_and_the_next_login_is_bound(client, world):
    unbound = wechat_login(client, "oHong00001")
    bound = bind(client, unbound["access_token"], "张晓红", ALICE_PHONE).get_json()["data"]
    me = client.get("/api/v1/me", headers=bearer(bound["access_token"]))
    assert me.status_code == 200 and me.get_json()["data"]["member"]["name"] == "张晓红"
    again = wechat_login(client, "oHong00001")
    assert again["needs_binding"] is False and again["member"]["id"] == world["hong"].id


@pytest.mark.parametrize(("name", "phone"), [
    ("张晓丽", ALICE_PHONE),  # someone else's name with this phone
    ("张晓红", "13900000000"),  # the right name, a phone nobody has
    ("张晓", ALICE_PHONE),  # a prefix of the name is not the name
])
def test_a_wrong_name_or_phone_is_404_member_not_found(client, world, name, phone):
    unbound = wechat_login(client, "oHong00001")
    response = bind(client, unbound["access_token"], name, phone)
    assert response.status_code == 404 and response.get_json()["code"] == "member_not_found"
    assert db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == "oHong00001")) is None


def test_a_malformed_phone_is_422_naming_the_field(client, world):
    unbound = wechat_login(client, "oHong00001")
    response = bind(client, unbound["access_token"], "张晓红", "12345")
    assert response.status_code == 422 and "phone" in response.get_json()["data"]["errors"]


def test_a_member_who_left_the_roster_cannot_be_bound(client, world):
    world["hong"].is_active = False
    db.session.commit()
    unbound = wechat_login(client, "oHong00001")
    assert bind(client, unbound["access_token"], "张晓红", ALICE_PHONE).status_code == 404


def test_binding_twice_is_409_with_either_token(client, world):
    unbound = wechat_login(client, "oHong00001")
    bound = bind(client, unbound["access_token"], "张晓红", ALICE_PHONE).get_json()["data"]
    for token in (unbound["access_token"], bound["access_token"]):
        response = bind(client, token, "张晓红", ALICE_PHONE)
        assert response.status_code == 409 and response.get_json()["code"] == "already_bound"


def test_a_member_already_bound_to_another_wechat_is_409(client, world):
    first = wechat_login(client, "oHong00001")
    assert bind(client, first["access_token"], "张晓红", ALICE_PHONE).status_code == 200
    second = wechat_login(client, "oIntruder1")
    response = bind(client, second["access_token"], "张晓红", ALICE_PHONE)
    assert response.status_code == 409 and response.get_json()["code"] == "member_already_bound"
    assert db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == "oIntruder1")) is None


def test_a_member_with_an_existing_account_binds_to_that_account(client, world):
    account = make_user(member=world["hong"])
    db.session.commit()
    unbound = wechat_login(client, "oHong00001")
    data = bind(client, unbound["access_token"], "张晓红", ALICE_PHONE).get_json()["data"]
    assert data["member"]["id"] == world["hong"].id
    identity = db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.openid == "oHong00001"))
    assert identity.user_id == account.id


def test_guessing_the_four_digits_a_masked_phone_hides_is_stopped_before_the_member_is_taken(client, world):
    """138****8000 is what approvers and exports show: the hidden digits must not be guessable by binding."""
    attacker = wechat_login(client, "oIntruder1")
    answers = [bind(client, attacker["access_token"], "张晓红", f"138{n:04d}8000").status_code for n in range(20)]
    assert answers[0] == 404 and answers[-1] == 429
    assert bind(client, attacker["access_token"], "张晓红", ALICE_PHONE).status_code == 429
    assert db.session.scalar(sa.select(WechatIdentity.user_id).where(WechatIdentity.openid == "oIntruder1")) is None
    owner = wechat_login(client, "oHong00001")
    assert bind(client, owner["access_token"], "张晓红", ALICE_PHONE).status_code == 200


def test_an_unbound_token_cannot_reach_member_endpoints(client, world):
    unbound = wechat_login(client, "oHong00001")
    for path in ("/api/v1/me", "/api/v1/members", f"/api/v1/members/{world['alice'].id}", "/api/v1/regions"):
        response = client.get(path, headers=bearer(unbound["access_token"]))
        assert response.status_code == 403 and response.get_json()["code"] == "binding_required", path


def test_binding_needs_an_access_token(client, world):
    assert client.post(BIND, json={"name": "张晓红", "phone": ALICE_PHONE}).status_code == 401
    unbound = wechat_login(client, "oHong00001")
    assert bind(client, unbound["refresh_token"], "张晓红", ALICE_PHONE).status_code == 401


def test_a_console_token_cannot_bind(client, world):
    response = bind(client, auth_header(world["users"]["admin"])["Authorization"].split()[1], "张晓红", ALICE_PHONE)
    assert response.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WechatIdentity)) == 0


def test_unknown_fields_in_a_bind_request_are_422(client, world):
    unbound = wechat_login(client, "oHong00001")
    response = client.post(BIND, json={"name": "张晓红", "phone": ALICE_PHONE, "member_id": world["alice"].id},
                           headers=bearer(unbound["access_token"]))
    assert response.status_code == 422 and "member_id" in response.get_json()["data"]["errors"]


def test_binding_writes_audit_rows_for_success_and_each_kind_of_failure(client, world):
    unbound = wechat_login(client, "oHong00001")
    bind(client, unbound["access_token"], "张晓红", "13900000000")
    bind(client, unbound["access_token"], "张晓红", ALICE_PHONE)
    intruder = wechat_login(client, "oIntruder1")
    bind(client, intruder["access_token"], "张晓红", ALICE_PHONE)
    rows = audit_rows("wechat.bind")
    assert [row.result for row in rows] == ["failed", "ok", "failed"]
    assert rows[1].target_type == "members" and rows[1].target_id == str(world["hong"].id)
    assert rows[2].detail.get("reason") == "member_already_bound"
    assert all(row.request_id for row in rows)
    for row in rows:  # the audit trail itself carries no phone or openid
        assert ALICE_PHONE not in str(row.detail) and "oHong" not in str(row.detail)


def test_the_unbound_refresh_token_dies_with_the_binding(client, world):
    unbound = wechat_login(client, "oHong00001")
    bind(client, unbound["access_token"], "张晓红", ALICE_PHONE)
    response = client.post("/api/v1/auth/refresh", headers=bearer(unbound["refresh_token"]))
    assert response.status_code == 401


def test_a_pre_bound_identity_can_sign_in_again(client, world):
    make_wechat_identity("oBob000001", world["users"]["bob"])
    db.session.commit()
    assert wechat_login(client, "oBob000001")["member"]["id"] == world["bob"].id


@pytest.mark.postgres  # in-memory SQLite has one connection, so no second writer can interleave
def test_two_wechat_users_racing_for_one_member_get_one_binding_and_one_409(client, world):
    """Between our check and our insert, another request creates the member's account."""
    unbound = wechat_login(client, "oHong00001")
    session, raced = db.session(), []

    def other_request_wins(flushing, _context, _instances):
        if not raced and any(isinstance(obj, User) for obj in flushing.new):
            raced.append(True)
            with db.engine.connect() as other:
                other.execute(sa.insert(User).values(member_id=world["hong"].id, display_name="张晓红"))
                other.commit()

    sa.event.listen(session, "before_flush", other_request_wins)
    try:
        response = bind(client, unbound["access_token"], "张晓红", ALICE_PHONE)
    finally:
        sa.event.remove(session, "before_flush", other_request_wins)
    assert raced
    assert response.status_code == 409 and response.get_json()["code"] == "member_already_bound"


@pytest.mark.postgres  # in-memory SQLite has one connection, so no second writer can interleave
def test_one_wechat_binding_two_members_at_once_gets_one_binding_and_one_409(app, client, world, monkeypatch):
    """Both requests read the identity unbound before either writes: the second must not re-point it."""
    make_member(world["fin2"], world["north"], name="王晓明", phone="13900139000")
    db.session.commit()
    token = wechat_login(client, "oHong00001")["access_token"]
    both_looked, roster_member = threading.Barrier(2), signin._roster_member

    def after_reading_the_identity(*args):
        with contextlib.suppress(threading.BrokenBarrierError):  # the fix: the second waits for the identity
            both_looked.wait(timeout=1)
        return roster_member(*args)

    monkeypatch.setattr(signin, "_roster_member", after_reading_the_identity)
    responses = hammer(app, [lambda: bind(app.test_client(), token, "张晓红", ALICE_PHONE),
                             lambda: bind(app.test_client(), token, "王晓明", "13900139000")])
    assert sorted(r.status_code for r in responses) == [200, 409]
    won, lost = sorted(responses, key=lambda r: r.status_code)
    assert lost.get_json()["code"] == "already_bound"
    db.session.expire_all()
    bound_to = db.session.scalar(sa.select(User.member_id).join(WechatIdentity, WechatIdentity.user_id == User.id)
                                 .where(WechatIdentity.openid == "oHong00001"))
    assert bound_to == won.get_json()["data"]["member"]["id"]
    assert client.get("/api/v1/me", headers=bearer(won.get_json()["data"]["access_token"])).status_code == 200
