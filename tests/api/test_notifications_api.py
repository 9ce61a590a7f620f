"""A member's notifications over HTTP: the templates he may subscribe to and his grants, recording what he
accepted in wx.requestSubscribeMessage, and his inbox (paged, unread, read idempotently, nobody else's)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, SubscriptionGrant
from tests.factories import auth_header, make_world
from tests.factories.notifications import enqueue


@pytest.fixture
def world(app):
    world = make_world()
    world["h"] = {name: auth_header(user) for name, user in world["users"].items()}
    return world


def grant(client, world, keys, who="alice"):
    return client.post("/api/v1/me/subscriptions", json={"template_keys": keys}, headers=world["h"][who])


def test_a_member_sees_the_configured_templates_with_no_grants_at_first(client, world):
    response = client.get("/api/v1/me/subscriptions", headers=world["h"]["alice"])
    assert response.status_code == 200
    templates = {t["key"]: t for t in response.get_json()["data"]["templates"]}
    assert templates["record_decided"] == {"key": "record_decided", "template_id": "dev-record-decided",
                                           "title": "审核结果通知", "granted": 0}
    assert set(templates) >= {"order_ready", "activity_reminder", "points_expiring", "star_published"}


def test_each_accepted_key_adds_one_grant_and_the_list_shows_them(client, world):
    first = grant(client, world, ["record_decided", "order_ready"])
    assert first.status_code == 201
    assert first.get_json()["data"] == {"granted": {"order_ready": 1, "record_decided": 1}}
    assert grant(client, world, ["record_decided"]).get_json()["data"] == {"granted": {"record_decided": 2}}
    templates = {t["key"]: t["granted"] for t in
                 client.get("/api/v1/me/subscriptions", headers=world["h"]["alice"]).get_json()["data"]["templates"]}
    assert (templates["record_decided"], templates["order_ready"], templates["report_decided"]) == (2, 1, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "notification.grant")) == 2


def test_an_unknown_template_key_is_a_field_error_and_records_nothing(client, world):
    response = grant(client, world, ["record_decided", "lottery_win"])
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == "template_unknown"
    assert "lottery_win" in body["data"]["errors"]["template_keys"][0]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubscriptionGrant)) == 0
    assert grant(client, world, []).status_code == 422


def test_a_console_user_without_a_member_cannot_subscribe(client, world):
    assert grant(client, world, ["record_decided"], who="admin").status_code == 403
    assert client.get("/api/v1/me/messages", headers=world["h"]["admin"]).status_code == 403


def test_the_inbox_is_newest_first_paged_with_the_unread_count(client, world):
    for n in range(3):
        enqueue(world["alice"], f"record:{n}:rejected", record_id=n, reason=f"理由{n}")
    enqueue(world["bob"], "record:9:rejected")
    body = client.get("/api/v1/me/messages?page_size=2", headers=world["h"]["alice"]).get_json()["data"]
    assert (body["total"], body["unread"], body["page"], body["page_size"]) == (3, 3, 1, 2)
    newest = body["items"][0]
    assert newest["body"].endswith("理由2") and newest["read_at"] is None
    assert newest["event"] == "record_rejected" and newest["link"] == "/pages/report/report"
    assert newest["created_at"].endswith("+08:00")


def test_reading_a_message_is_idempotent_and_filters_it_out_of_unread(client, world):
    first, second = enqueue(world["alice"], "a"), enqueue(world["alice"], "b")
    url = f"/api/v1/me/messages/{first.id}/read"
    once = client.post(url, headers=world["h"]["alice"]).get_json()["data"]
    again = client.post(url, headers=world["h"]["alice"]).get_json()["data"]
    assert once["read_at"] is not None and again["read_at"] == once["read_at"]
    unread = client.get("/api/v1/me/messages?unread=true", headers=world["h"]["alice"]).get_json()["data"]
    assert [item["id"] for item in unread["items"]] == [second.id] and unread["unread"] == 1


def test_another_members_message_is_not_found(client, world):
    message = enqueue(world["bob"], "a")
    response = client.post(f"/api/v1/me/messages/{message.id}/read", headers=world["h"]["alice"])
    assert response.status_code == 404 and response.get_json()["code"] == "message_not_found"
    assert client.post("/api/v1/me/messages/999999/read", headers=world["h"]["alice"]).status_code == 404


def test_get_me_carries_the_unread_count_in_its_one_statement(client, world, statements):
    enqueue(world["alice"], "a")
    read = enqueue(world["alice"], "b")
    client.post(f"/api/v1/me/messages/{read.id}/read", headers=world["h"]["alice"])
    client.get("/api/v1/me", headers=world["h"]["alice"])  # this process learns the policy's validity
    statements.clear()
    me = client.get("/api/v1/me", headers=world["h"]["alice"]).get_json()["data"]
    assert me["points"]["unread_messages"] == 1
    assert len(statements) == 2  # the principal, then the one statement that now counts them too


def test_a_key_listed_twice_in_one_acceptance_is_one_grant(client, world):
    # wx.requestSubscribeMessage answers once per template: one tap cannot accept a template twice
    response = grant(client, world, ["record_decided", "order_ready", "record_decided"])
    assert response.status_code == 201
    assert response.get_json()["data"] == {"granted": {"order_ready": 1, "record_decided": 1}}
    assert db.session.scalar(sa.select(SubscriptionGrant.granted_total)
                             .where(SubscriptionGrant.template_key == "record_decided")) == 1


def _inbox(client, world, query):
    response = client.get(f"/api/v1/me/messages?{query}", headers=world["h"]["alice"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_reading_while_paging_the_unread_tab_with_before_loses_no_message(client, world):
    for n in range(25):
        enqueue(world["alice"], f"record:{n}:rejected", record_id=n)
    first = _inbox(client, world, "unread=true")
    assert (len(first["items"]), first["total"]) == (20, 25)
    for item in first["items"][:5]:
        client.post(f"/api/v1/me/messages/{item['id']}/read", headers=world["h"]["alice"])
    rest = _inbox(client, world, f"unread=true&before={first['items'][-1]['id']}")
    assert len(rest["items"]) == 5 and (rest["page"], rest["total"], rest["unread"]) == (1, 5, 20)
    shown = [item["id"] for item in first["items"] + rest["items"]]
    assert shown == sorted(shown, reverse=True) and len(set(shown)) == 25


def test_a_message_arriving_between_loads_is_not_shown_twice_with_before(client, world):
    for n in range(3):
        enqueue(world["alice"], f"record:{n}:rejected", record_id=n)
    first = _inbox(client, world, "page_size=2")
    enqueue(world["alice"], "record:9:rejected")
    older = _inbox(client, world, f"page_size=2&before={first['items'][-1]['id']}")
    assert [item["id"] for item in older["items"]] == [first["items"][-1]["id"] - 1]
    assert (older["total"], older["page"], older["page_size"]) == (1, 1, 2)
    assert _inbox(client, world, "page=2&page_size=2")["total"] == 4  # page still pages the whole list


@pytest.mark.parametrize("before", ["0", "-1", "x", "2147483648"])
def test_before_must_be_a_row_id(client, world, before):
    response = client.get(f"/api/v1/me/messages?before={before}", headers=world["h"]["alice"])
    assert response.status_code == 422 and "before" in response.get_json()["data"]["errors"]
