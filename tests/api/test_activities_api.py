"""Activities, sign-ups and verified check-in/out over HTTP, as the mini-program and console call them."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.checkin import scans as checkin_domain
from points_service.domain.periods import LOCAL_TZ
from points_service.models import Checkin, IdempotencyRecord, IdempotencyState, LedgerEntry, Role
from tests.factories import auth_header, make_user, make_world
from tests.factories.activities import VENUE_LAT, VENUE_LNG, make_activity, scan_body


@pytest.fixture
def world(app):
    world = make_world()
    # Running now: started five minutes ago (not late), two hours long.
    world["activity"] = make_activity(world["north"], utcnow() - timedelta(minutes=5))
    db.session.commit()
    return world


def headers(world, name, **extra):
    return {**auth_header(world["users"][name]), **extra}


def rfc3339(instant) -> str:
    return instant.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def new_activity_body(world, **overrides) -> dict:
    starts = utcnow() + timedelta(days=1)
    body = {"community_id": world["north"].id, "title": "固定服务日：清理楼道", "item_code": "member.activity_hour",
            "starts_at": rfc3339(starts), "ends_at": rfc3339(starts + timedelta(hours=2)),
            "location": {"lat": VENUE_LAT, "lng": VENUE_LNG, "radius_m": 200}, "capacity": 30}
    body.update(overrides)
    return body


def code(client, world, activity=None) -> str:
    activity = activity or world["activity"]
    response = client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=headers(world, "community_admin"))
    assert response.status_code == 200
    return response.get_json()["data"]["token"]


def post_checkin(client, world, body, name="alice", **extra):
    return client.post(f"/api/v1/activities/{world['activity'].id}/checkins", json=body,
                       headers=headers(world, name, **extra))


def test_a_community_admin_publishes_an_activity(client, world):
    response = client.post("/api/v1/activities", json=new_activity_body(world),
                           headers=headers(world, "community_admin"))
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["status"] == "published" and data["community"]["name"] == "北门社区"
    assert data["location"] == {"lat": VENUE_LAT, "lng": VENUE_LNG, "radius_m": 200}
    assert data["starts_at"].endswith("+08:00") and "checkin_secret" not in data


def test_a_community_admin_of_another_community_cannot_publish_there(client, world):
    body = new_activity_body(world, community_id=world["south"].id)
    response = client.post("/api/v1/activities", json=body, headers=headers(world, "community_admin"))
    assert response.status_code == 403


def test_an_item_that_is_not_an_automatic_hourly_item_is_refused_naming_item_code(client, world):
    body = new_activity_body(world, item_code="member.self_service_hour")
    response = client.post("/api/v1/activities", json=body, headers=headers(world, "admin"))
    assert response.status_code == 422 and set(response.get_json()["data"]["errors"]) == {"item_code"}


@pytest.mark.parametrize("change,field", [
    (lambda b: b.update(ends_at=b["starts_at"]), "ends_at"),
    (lambda b: b["location"].update(radius_m=9), "location"),
    (lambda b: b["location"].update(radius_m=5001), "location"),
    (lambda b: b["location"].update(lat=60.0), "location"),
    (lambda b: b["location"].update(lng=True), "location"),
    (lambda b: b.update(capacity=True), "capacity"),
    (lambda b: b.update(starts_at="2026-11-01T09:00:00"), "starts_at"),  # no offset
    (lambda b: b.update(secret="x"), "secret"),
])
def test_bad_activity_input_is_refused_naming_the_field(client, world, change, field):
    body = new_activity_body(world)
    change(body)
    response = client.post("/api/v1/activities", json=body, headers=headers(world, "admin"))
    assert response.status_code == 422 and field in response.get_json()["data"]["errors"]


def test_a_branch_secretary_proposes_an_activity_for_his_branch_only(client, world):
    url = f"/api/v1/organizations/{world['fin1'].id}/activities"
    response = client.post(url, json=new_activity_body(world), headers=headers(world, "secretary"))
    assert response.status_code == 201 and response.get_json()["data"]["status"] == "proposed"
    assert client.post(url, json=new_activity_body(world), headers=headers(world, "alice")).status_code == 403


def test_members_list_and_read_published_activities(client, world):
    south = make_activity(world["south"], utcnow() + timedelta(days=3))
    db.session.commit()
    listed = client.get(f"/api/v1/activities?community_id={world['north'].id}", headers=headers(world, "alice"))
    assert [a["id"] for a in listed.get_json()["data"]["items"]] == [world["activity"].id]
    assert client.get(f"/api/v1/activities/{south.id}", headers=headers(world, "alice")).status_code == 200
    assert client.get("/api/v1/activities", headers={}).status_code == 401


def test_sign_up_twice_is_409_and_withdrawing_frees_the_seat(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=1), capacity=1)
    db.session.commit()
    url = f"/api/v1/activities/{activity.id}/signups"
    assert client.post(url, headers=headers(world, "alice")).status_code == 201
    again = client.post(url, headers=headers(world, "alice"))
    assert again.status_code == 409 and again.get_json()["code"] == "already_signed_up"
    full = client.post(url, headers=headers(world, "bob"))
    assert full.status_code == 409 and full.get_json()["code"] == "activity_full"
    withdrawn = client.delete(url, headers=headers(world, "alice"))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["data"]["status"] == "withdrawn"
    assert client.post(url, headers=headers(world, "bob")).status_code == 201


def signed_up(client, world, name, activity_id) -> tuple[bool, bool]:
    """(in the list, in the detail) for this caller; nothing held in the session, as in a request of its own."""
    db.session.expunge_all()
    listed = client.get(f"/api/v1/activities?community_id={world['north_id']}", headers=world["headers"][name])
    row = next(a for a in listed.get_json()["data"]["items"] if a["id"] == activity_id)
    detail = client.get(f"/api/v1/activities/{activity_id}", headers=world["headers"][name]).get_json()["data"]
    return row["signed_up"], detail["signed_up"]


def test_the_list_and_the_detail_say_whether_the_caller_signed_up(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=1))
    db.session.commit()
    activity_id, running_id, world["north_id"] = activity.id, world["activity"].id, world["north"].id
    world["headers"] = {name: headers(world, name) for name in ("alice", "bob", "community_admin")}
    url = f"/api/v1/activities/{activity_id}/signups"
    assert signed_up(client, world, "alice", activity_id) == (False, False)
    assert client.post(url, headers=world["headers"]["alice"]).status_code == 201
    assert signed_up(client, world, "alice", activity_id) == (True, True)
    assert signed_up(client, world, "bob", activity_id) == (False, False)  # another member's sign-up
    assert signed_up(client, world, "community_admin", activity_id) == (False, False)  # staff: no member
    assert signed_up(client, world, "alice", running_id) == (False, False)  # another activity
    assert client.delete(url, headers=world["headers"]["alice"]).status_code == 200
    assert signed_up(client, world, "alice", activity_id) == (False, False)  # withdrawn
    assert client.post(url, headers=world["headers"]["alice"]).status_code == 201
    assert signed_up(client, world, "alice", activity_id) == (True, True)  # signed up again


def test_a_member_cannot_get_the_checkin_code(client, world):
    url = f"/api/v1/activities/{world['activity'].id}/checkin-code"
    response = client.get(url, headers=headers(world, "alice"))
    assert response.status_code == 403
    data = client.get(url, headers=headers(world, "community_admin")).get_json()["data"]
    assert data["step_seconds"] == 30 and len(data["token"]) <= 32 and data["expires_at"].endswith("+08:00")


def test_check_in_then_check_out_credits_the_hours_once(client, world, monkeypatch):
    created = post_checkin(client, world, scan_body(code(client, world)))
    assert created.status_code == 201
    data = created.get_json()["data"]
    assert data["status"] == "checked_in" and data["checkin_distance_m"] == 0
    later = utcnow() + timedelta(minutes=95)  # 1 h 40 min after the start: 1.5 hours
    monkeypatch.setattr(checkin_domain, "utcnow", lambda: later)
    url = f"/api/v1/checkins/{data['checkin_id']}/checkout"
    out = client.post(url, json=scan_body(code(client, world)), headers=headers(world, "alice"))
    assert out.status_code == 200 and out.get_json()["data"]["hours"] == 1.5
    again = client.post(url, json=scan_body(code(client, world)), headers=headers(world, "alice"))
    assert again.status_code == 409 and again.get_json()["code"] == "already_checked_out"
    points = db.session.scalars(sa.select(LedgerEntry.points).where(LedgerEntry.source_id == str(data["checkin_id"])))
    assert [str(p) for p in points] == ["1.50", "1.50"]


def test_a_second_check_in_is_409_already_checked_in_with_the_id_to_check_out(client, world, monkeypatch):
    first = post_checkin(client, world, scan_body(code(client, world)))
    assert first.status_code == 201
    checkin_id = first.get_json()["data"]["checkin_id"]
    # The first answer was lost (or this is another phone): a new scan under a new key.
    again = post_checkin(client, world, scan_body(code(client, world)), **{"Idempotency-Key": "scan-lost-000001"})
    body = again.get_json()
    assert again.status_code == 409 and body["code"] == "already_checked_in" and body["message"]
    assert set(body) == {"code", "message", "data", "request_id"} and body["data"] == {"checkin_id": checkin_id}
    later = utcnow() + timedelta(minutes=95)
    monkeypatch.setattr(checkin_domain, "utcnow", lambda: later)
    out = client.post(f"/api/v1/checkins/{body['data']['checkin_id']}/checkout", json=scan_body(code(client, world)),
                      headers=headers(world, "alice"))
    assert out.status_code == 200 and out.get_json()["data"]["status"] == "checked_out"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 1


def test_a_repeated_check_in_names_the_callers_own_check_in_and_only_once_he_is_on_site(client, world):
    assert post_checkin(client, world, scan_body(code(client, world)), name="bob").status_code == 201
    own = post_checkin(client, world, scan_body(code(client, world))).get_json()["data"]["checkin_id"]
    again = post_checkin(client, world, scan_body(code(client, world)))
    assert again.get_json()["data"] == {"checkin_id": own}
    away = post_checkin(client, world, scan_body(code(client, world), metres=5000))  # judged before the UNIQUE key
    assert away.status_code == 422 and away.get_json()["code"] == "outside_geofence"
    assert "checkin_id" not in (away.get_json()["data"] or {})


@pytest.mark.parametrize("body,error", [
    (lambda token: scan_body(token, metres=5000), "outside_geofence"),
    (lambda token: scan_body(token[:-2] + "zz"), "checkin_token_invalid"),
])
def test_check_in_refusals_carry_their_codes(client, world, body, error):
    response = post_checkin(client, world, body(code(client, world)))
    assert response.status_code == 422 and response.get_json()["code"] == error


def test_check_in_before_the_window_opens_is_outside_the_time_window(client, world):
    world["activity"] = make_activity(world["north"], utcnow() + timedelta(hours=2))
    db.session.commit()
    response = post_checkin(client, world, scan_body(code(client, world)))
    assert response.status_code == 422 and response.get_json()["code"] == "outside_time_window"


def test_checking_out_someone_elses_check_in_is_not_found(client, world):
    data = post_checkin(client, world, scan_body(code(client, world))).get_json()["data"]
    response = client.post(f"/api/v1/checkins/{data['checkin_id']}/checkout", json=scan_body(code(client, world)),
                           headers=headers(world, "bob"))
    assert response.status_code == 404


def test_a_suspicious_check_in_is_accepted_for_review_and_decided_by_the_community_admin(client, world):
    data = post_checkin(client, world, scan_body(code(client, world), accuracy=800)).get_json()["data"]
    assert data["status"] == "review" and data["review_reason"]
    url = f"/api/v1/checkins/{data['checkin_id']}/review"
    assert client.post(url, json={"decision": "approve"}, headers=headers(world, "alice")).status_code == 403
    decided = client.post(url, json={"decision": "approve", "comment": "已电话核实"},
                          headers=headers(world, "community_admin"))
    assert decided.status_code == 200 and decided.get_json()["data"]["status"] == "checked_in"
    queue = client.get(f"/api/v1/activities/{world['activity'].id}/checkins?status=checked_in",
                       headers=headers(world, "community_admin")).get_json()["data"]
    assert [(c["member_name"], c["status"]) for c in queue["items"]] == [("张晓丽", "checked_in")]


def test_the_check_in_list_is_for_the_organizer_only(client, world):
    url = f"/api/v1/activities/{world['activity'].id}/checkins"
    assert client.get(url, headers=headers(world, "alice")).status_code == 403
    south_admin = make_user((Role.COMMUNITY_ADMIN, world["south"].id))
    db.session.commit()
    assert client.get(url, headers=auth_header(south_admin)).status_code == 403


def test_the_same_idempotency_key_and_body_replays_the_first_check_in(client, world):
    body = scan_body(code(client, world))
    first = post_checkin(client, world, body, **{"Idempotency-Key": "scan-0001-abcdef"})
    second = post_checkin(client, world, body, **{"Idempotency-Key": "scan-0001-abcdef"})
    assert first.status_code == second.status_code == 201
    assert first.get_json()["data"]["checkin_id"] == second.get_json()["data"]["checkin_id"]
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 1


def test_the_same_idempotency_key_with_another_body_is_422(client, world):
    token = code(client, world)
    post_checkin(client, world, scan_body(token), **{"Idempotency-Key": "scan-0002-abcdef"})
    other = post_checkin(client, world, scan_body(token, metres=3), **{"Idempotency-Key": "scan-0002-abcdef"})
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_the_same_idempotency_key_while_the_first_is_in_flight_is_409(client, world):
    url = f"/api/v1/activities/{world['activity'].id}/checkins"
    raw = json.dumps(scan_body(code(client, world))).encode()
    fingerprint = hashlib.sha256(b"POST\0" + url.encode() + b"\0" + raw + b"\0").hexdigest()
    db.session.add(IdempotencyRecord(user_id=world["users"]["alice"].id, key="scan-0003-abcdef",
                                     fingerprint=fingerprint, state=IdempotencyState.IN_FLIGHT))
    db.session.commit()
    response = client.post(url, data=raw, content_type="application/json",
                           headers=headers(world, "alice", **{"Idempotency-Key": "scan-0003-abcdef"}))
    assert response.status_code == 409 and response.get_json()["code"] == "idempotency_in_flight"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 0


def test_a_failed_check_in_releases_its_idempotency_key(client, world):
    key = {"Idempotency-Key": "scan-0004-abcdef"}
    token = code(client, world)
    assert post_checkin(client, world, scan_body(token, metres=5000), **key).status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0


def test_the_list_takes_from_and_to_with_offsets(client, world):
    next_week = make_activity(world["north"], utcnow() + timedelta(days=7))
    db.session.commit()
    window = {"from": rfc3339(utcnow() + timedelta(days=6)), "to": rfc3339(utcnow() + timedelta(days=8))}
    listed = client.get("/api/v1/activities", query_string=window, headers=headers(world, "alice"))
    assert [a["id"] for a in listed.get_json()["data"]["items"]] == [next_week.id]
    naive = client.get("/api/v1/activities", query_string={"from": "2026-11-01T00:00:00"},
                       headers=headers(world, "alice"))
    assert naive.status_code == 422 and "from" in naive.get_json()["data"]["errors"]


# ------------------------------------------------------------------------------------------ cancelling

def cancel(client, world, name="community_admin", activity=None, body=None):
    activity = activity or world["activity"]
    return client.post(f"/api/v1/activities/{activity.id}/cancel", json={"reason": "场地临时征用"} if body is None
                       else body, headers=headers(world, name))


def test_the_host_community_admin_cancels_and_the_signed_up_member_reads_why(client, world):
    tomorrow = make_activity(world["north"], utcnow() + timedelta(days=1))
    db.session.commit()
    assert client.post(f"/api/v1/activities/{tomorrow.id}/signups", headers=headers(world, "alice")).status_code == 201
    response = cancel(client, world, activity=tomorrow)
    assert response.status_code == 200 and response.get_json()["data"]["status"] == "cancelled"
    listed = client.get(f"/api/v1/activities?community_id={world['north'].id}", headers=headers(world, "alice"))
    assert {a["id"]: a["status"] for a in listed.get_json()["data"]["items"]}[tomorrow.id] == "cancelled"
    inbox = client.get("/api/v1/me/messages", headers=headers(world, "alice")).get_json()["data"]["items"]
    assert [(m["event"], m["title"]) for m in inbox] == [("activity_cancelled", "活动已取消")]
    assert "场地临时征用" in inbox[0]["body"] and inbox[0]["link"] == "/pages/activities/activities"
    again = client.post(f"/api/v1/activities/{tomorrow.id}/signups", headers=headers(world, "bob"))
    assert again.status_code == 409 and again.get_json()["code"] == "activity_cancelled"


def test_a_cancelled_activity_refuses_check_ins_with_its_own_code(client, world):
    token = code(client, world)
    assert cancel(client, world).status_code == 200
    refused = post_checkin(client, world, scan_body(token))
    assert refused.status_code == 409 and refused.get_json()["code"] == "activity_cancelled"
    screen = client.get(f"/api/v1/activities/{world['activity'].id}/checkin-code",
                        headers=headers(world, "community_admin"))
    assert screen.status_code == 409 and screen.get_json()["code"] == "activity_cancelled"


def test_cancelling_is_for_the_host_community_others_get_403(client, world):
    proposed = make_activity(world["north"], utcnow() + timedelta(days=1), proposed_by=world["fin1"])
    db.session.commit()
    assert cancel(client, world, "alice").status_code == 403  # before the body is read
    host_only = cancel(client, world, "secretary", proposed)
    assert host_only.status_code == 403 and host_only.get_json()["code"] == "activity_host_only"
    south_admin = make_user((Role.COMMUNITY_ADMIN, world["south"].id))
    db.session.commit()
    other = client.post(f"/api/v1/activities/{proposed.id}/cancel", json={"reason": "x"},
                        headers=auth_header(south_admin))
    assert other.status_code == 403 and other.get_json()["code"] == "forbidden"
    missing = client.post("/api/v1/activities/2000000000/cancel", json={"reason": "x"},
                          headers=headers(world, "community_admin"))
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"


def test_once_someone_checked_in_or_once_cancelled_it_is_409_activity_not_cancellable(client, world):
    assert post_checkin(client, world, scan_body(code(client, world))).status_code == 201
    refused = cancel(client, world)
    assert refused.status_code == 409 and refused.get_json()["code"] == "activity_not_cancellable"
    tomorrow = make_activity(world["north"], utcnow() + timedelta(days=1))
    db.session.commit()
    assert cancel(client, world, activity=tomorrow).status_code == 200
    twice = cancel(client, world, activity=tomorrow)
    assert twice.status_code == 409 and twice.get_json()["code"] == "activity_not_cancellable"


@pytest.mark.parametrize("body", [{}, {"reason": "   "}, {"reason": "因" * 201}, {"reason": "x", "notify": False}])
def test_cancelling_needs_a_reason(client, world, body):
    response = cancel(client, world, body=body)
    assert response.status_code == 422 and response.get_json()["code"] == "validation_failed"
    assert set(response.get_json()["data"]["errors"]) <= {"reason", "notify"}
    assert client.get(f"/api/v1/activities/{world['activity'].id}",
                      headers=headers(world, "alice")).get_json()["data"]["status"] == "published"
