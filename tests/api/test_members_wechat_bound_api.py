"""``wechat_bound`` on GET /members and GET /members/{id}: staff see whether a member has bound his WeChat (never
the openid), the list in its one statement whatever the number of members."""

from __future__ import annotations

import pytest

from points_service.db import db
from tests.factories import auth_header, make_member, make_user, make_wechat_identity, make_world


@pytest.fixture
def world(app):
    world = make_world()
    make_wechat_identity("oAliceBound001", world["users"]["alice"])
    make_wechat_identity("oStrayUnbound1")  # signed in once, never bound: binds nobody
    db.session.commit()
    return world


def listed(client, user, **query) -> dict:
    response = client.get("/api/v1/members", query_string={"page_size": 100, **query}, headers=auth_header(user))
    assert response.status_code == 200, response.get_json()
    return {item["id"]: item for item in response.get_json()["data"]["items"]}


def detail(client, user, member_id: int) -> dict:
    response = client.get(f"/api/v1/members/{member_id}", headers=auth_header(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_the_list_and_the_detail_say_who_has_bound_wechat_without_the_openid(client, world):
    admin = world["users"]["admin"]
    items = listed(client, admin)
    # alice: bound; bob: an account, no WeChat; carol: no account at all
    assert items[world["alice"].id]["wechat_bound"] is True
    assert items[world["bob"].id]["wechat_bound"] is False and items[world["carol"].id]["wechat_bound"] is False
    assert detail(client, admin, world["alice"].id)["wechat_bound"] is True
    assert detail(client, admin, world["bob"].id)["wechat_bound"] is False
    for response in (client.get("/api/v1/members", headers=auth_header(admin)),
                     client.get(f"/api/v1/members/{world['alice'].id}", headers=auth_header(admin))):
        assert "oAliceBound001" not in response.get_data(as_text=True)
        assert "openid" not in response.get_data(as_text=True)


def test_a_secretary_sees_it_for_his_branch(client, world):
    items = listed(client, world["users"]["secretary"])
    assert items[world["alice"].id]["wechat_bound"] is True


def test_after_unbinding_the_member_shows_unbound(client, world):
    alice, admin = world["alice"], world["users"]["admin"]
    response = client.post(f"/api/v1/members/{alice.id}/unbind-wechat", json={"reason": "更换微信号"},
                           headers=auth_header(admin))
    assert response.status_code == 200 and response.get_json()["data"]["wechat_bound"] is False
    assert detail(client, admin, alice.id)["wechat_bound"] is False
    assert listed(client, admin)[alice.id]["wechat_bound"] is False


def test_the_page_is_one_statement_whatever_the_number_of_members(client, world, statements):
    headers = {"Authorization": auth_header(world["users"]["admin"])["Authorization"]}

    def page() -> dict:
        db.session.expire_all()  # the test shares the requests' session: nothing cached helps the request
        statements.clear()
        response = client.get("/api/v1/members", query_string={"page_size": 100}, headers=headers)
        return {item["id"]: item for item in response.get_json()["data"]["items"]}

    few = page()
    few_statements = list(statements)
    for i in range(12):  # more members, every one bound
        member = make_member(world["fin1"], world["north"], world["north_grid"], name=f"党员{i}")
        make_wechat_identity(f"oMore{i:08d}", make_user(member=member))
    db.session.commit()
    many = page()
    assert len(many) == len(few) + 12 and all(many[m]["wechat_bound"] for m in many if m not in few)
    assert len(statements) == len(few_statements) == 3, "\n---\n".join(s[:150] for s in statements)
    assert sum("wechat_identities" in s for s in statements) == 1  # the page's statement


def test_the_openapi_document_describes_the_field(client):
    spec = client.get("/api/openapi.json").get_json()
    field = spec["components"]["schemas"]["RosterMember"]["properties"]["wechat_bound"]
    assert field["type"] == "boolean" and "微信" in field["description"]


def test_hr_sees_it_too(client, world):
    assert listed(client, world["users"]["hr"])[world["alice"].id]["wechat_bound"] is True
