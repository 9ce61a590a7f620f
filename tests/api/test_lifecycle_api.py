"""Member status over HTTP: deactivate, reactivate, transfer and the history, in the envelope, with access rules."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.periods import LOCAL_TZ
from points_service.models import Affiliation
from tests.factories import auth_header, make_world
from tests.factories.boards import entry

LONG_AGO = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
LEAVING = {"reason_code": "transferred_out", "reason": "组织关系转至外市", "effective_on": "2026-11-01"}


@pytest.fixture
def world(app):
    world = make_world()
    db.session.execute(sa.update(Affiliation).values(valid_from=LONG_AGO))
    entry(world["alice"], 3, datetime(2026, 11, 5, 9, tzinfo=LOCAL_TZ))
    db.session.commit()
    return world


def post(client, url, user, body):
    return client.post(url, json=body, headers=auth_header(user))


def test_an_admin_deactivates_a_member_who_then_fails_with_a_clear_code(client, world):
    alice = world["users"]["alice"]
    response = post(client, f"/api/v1/members/{world['alice'].id}/deactivate", world["users"]["admin"], LEAVING)
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert (data["kind"], data["reason_code"], data["effective_on"]) == ("deactivate", "transferred_out", "2026-11-01")
    assert data["effective_at"] == "2026-11-01T00:00:00+08:00"
    me = client.get("/api/v1/me", headers=auth_header(alice))
    assert me.status_code == 401  # his still-valid token stops working at once
    member = client.get(f"/api/v1/members/{world['alice'].id}", headers=auth_header(world["users"]["admin"]))
    assert member.get_json()["data"]["is_active"] is False


def test_a_second_deactivation_is_a_conflict_and_a_bad_reason_a_field_error(client, world):
    url = f"/api/v1/members/{world['alice'].id}/deactivate"
    bad = post(client, url, world["users"]["admin"], {**LEAVING, "reason_code": "fired"})
    assert bad.status_code == 422 and "reason_code" in bad.get_json()["data"]["errors"]
    assert post(client, url, world["users"]["admin"], LEAVING).status_code == 201
    again = post(client, url, world["users"]["admin"], LEAVING)
    assert again.status_code == 409 and again.get_json()["code"] == "member_already_inactive"


def test_a_secretary_may_not_deactivate_and_a_member_may_not_deactivate_himself(client, world):
    url = f"/api/v1/members/{world['alice'].id}/deactivate"
    assert post(client, url, world["users"]["secretary"], LEAVING).status_code == 403
    assert post(client, url, world["users"]["alice"], LEAVING).status_code == 403


def test_reactivation_and_history(client, world):
    admin = world["users"]["admin"]
    post(client, f"/api/v1/members/{world['alice'].id}/deactivate", admin, LEAVING)
    back = post(client, f"/api/v1/members/{world['alice'].id}/reactivate", admin, {"reason": "转回本市"})
    assert back.status_code == 201
    history = client.get(f"/api/v1/members/{world['alice'].id}/status-changes", headers=auth_header(admin))
    assert [c["kind"] for c in history.get_json()["data"]] == ["deactivate", "reactivate"]
    assert client.get("/api/v1/me", headers=auth_header(world["users"]["alice"])).status_code == 200


def test_a_transfer_changes_branch_and_community(client, world):
    body = {"branch_id": world["fin2"].id, "community_id": world["south"].id, "grid_id": world["south_grid"].id,
            "effective_on": "2026-11-15"}
    response = post(client, f"/api/v1/members/{world['alice'].id}/transfer", world["users"]["hr"], body)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert (data["branch"]["id"], data["community"]["id"], data["grid"]["id"]) == (
        world["fin2"].id, world["south"].id, world["south_grid"].id)


def test_a_transfer_naming_nothing_or_a_grid_of_another_community_is_refused(client, world):
    url = f"/api/v1/members/{world['alice'].id}/transfer"
    assert post(client, url, world["users"]["admin"], {}).status_code == 422
    wrong = post(client, url, world["users"]["admin"], {"community_id": world["south"].id,
                                                          "grid_id": world["north_grid"].id})
    assert wrong.status_code == 422 and "grid_id" in wrong.get_json()["data"]["errors"]


def test_a_future_dated_deactivation_answers_202_with_the_scheduled_change_which_can_be_cancelled(client, world):
    admin, url = world["users"]["admin"], f"/api/v1/members/{world['alice'].id}"
    response = post(client, f"{url}/deactivate", admin, {**LEAVING, "effective_on": "2099-01-01"})
    assert response.status_code == 202
    data = response.get_json()["data"]
    assert (data["kind"], data["status"], data["effective_on"]) == ("deactivate", "scheduled", "2099-01-01")
    assert client.get("/api/v1/me", headers=auth_header(world["users"]["alice"])).status_code == 200
    again = post(client, f"{url}/transfer", admin, {"branch_id": world["fin2"].id, "effective_on": "2099-02-01"})
    assert again.status_code == 409 and again.get_json()["code"] == "member_change_scheduled"
    cancelled = post(client, f"{url}/scheduled-changes/{data['id']}/cancel", admin, {"reason": "暂缓"})
    assert cancelled.status_code == 200 and cancelled.get_json()["data"]["status"] == "cancelled"
    listed = client.get(f"{url}/scheduled-changes", headers=auth_header(admin)).get_json()["data"]
    assert [(c["id"], c["status"], c["outcome"]) for c in listed] == [(data["id"], "cancelled", "暂缓")]
    moving = post(client, f"{url}/transfer", admin, {"branch_id": world["fin2"].id, "effective_on": "2099-02-01"})
    assert moving.status_code == 202 and moving.get_json()["data"]["branch_id"] == world["fin2"].id
