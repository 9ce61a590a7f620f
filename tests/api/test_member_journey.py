"""The whole flow over HTTP, as the mini-program and the console drive it: WeChat sign-in (fake WeChat on
loopback), bind, report, confirm, sign up, check in with a live token, check out, self-report, approve,
then read points and ledger. Only the server clock is simulated (check-out needs time to pass)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from points_service.db import utcnow
from points_service.domain.activities import signups as activities_domain
from points_service.domain.checkin import scans as checkin_domain
from points_service.domain.periods import PeriodKind, period_containing, to_rfc3339
from tests.factories import auth_header, make_member, make_world
from tests.factories.activities import RADIUS_M, VENUE_LAT, VENUE_LNG, scan_body
from tests.fake_wechat import serve_fake_wechat, wechat_config


@pytest.fixture
def clock(monkeypatch):
    """The server's clock, moved by the test (the domain reads ``utcnow`` from these modules)."""
    state = {"now": utcnow()}
    for module in (checkin_domain, activities_domain):
        monkeypatch.setattr(module, "utcnow", lambda: state["now"])
    return state


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ok(response, status=200) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] == "ok"
    return body["data"]


def test_a_member_goes_from_first_sign_in_to_credited_points(app, client, httpserver, clock):
    world = make_world()
    zhao = make_member(world["fin1"], world["north"], name="赵·敏", phone="13800138000")
    app.config.update(wechat_config(httpserver))
    fake = serve_fake_wechat(httpserver)
    admin, secretary = auth_header(world["users"]["community_admin"]), auth_header(world["users"]["secretary"])

    # 1. Sign in with a wx.login code; bind to the roster by name and phone.
    login = ok(client.post("/api/v1/auth/wechat", json={"code": fake.issue_code("openid-zhao")}))
    assert login["needs_binding"] is True and login["member"] is None
    bound = ok(client.post("/api/v1/auth/bind", json={"name": "赵·敏", "phone": "+86 138 0013 8000"},
                           headers=bearer(login["access_token"])))
    member = bearer(bound["access_token"])
    assert bound["member"]["id"] == zhao.id and bound["member"]["phone"] == "138****8000"

    # 2. Report to the residence community; the community admin confirms.
    report = ok(client.post("/api/v1/reports", json={"community_id": world["north"].id}, headers=member), 201)
    ok(client.post(f"/api/v1/reports/{report['id']}/confirm", json={}, headers=admin))

    # 3. The community publishes an activity; the member signs up.
    starts = clock["now"] + timedelta(hours=1)
    activity = ok(client.post("/api/v1/activities", headers=admin, json={
        "community_id": world["north"].id, "title": "固定服务日：清理楼道", "item_code": "member.activity_hour",
        "starts_at": to_rfc3339(starts), "ends_at": to_rfc3339(starts + timedelta(hours=3)),
        "location": {"lat": VENUE_LAT, "lng": VENUE_LNG, "radius_m": RADIUS_M}, "capacity": 30}), 201)
    ok(client.post(f"/api/v1/activities/{activity['id']}/signups", headers=member), 201)

    # 4. On site: scan the organizer's live code (a retried request replays the first answer).
    clock["now"] = starts + timedelta(minutes=5)
    code = ok(client.get(f"/api/v1/activities/{activity['id']}/checkin-code", headers=admin))
    retry = {**member, "Idempotency-Key": "checkin-zhao-0001"}
    first = ok(client.post(f"/api/v1/activities/{activity['id']}/checkins", json=scan_body(code["token"], metres=30),
                           headers=retry), 201)
    again = client.post(f"/api/v1/activities/{activity['id']}/checkins", json=scan_body(code["token"], metres=30),
                        headers=retry)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json()["data"] == first

    # 5. Two hours later, check out: 1 h 55 min present → 1.5 hours credited (rounded down to the half hour).
    clock["now"] = starts + timedelta(hours=2)
    code = ok(client.get(f"/api/v1/activities/{activity['id']}/checkin-code", headers=admin))
    ok(client.post(f"/api/v1/checkins/{first['checkin_id']}/checkout", json=scan_body(code["token"], metres=10),
                   headers=member))

    # 6. A self-reported service waits for the branch secretary, who approves it.
    record = ok(client.post("/api/v1/records", headers=member, json={
        "item_code": "member.self_service_hour", "occurred_at": to_rfc3339(utcnow() - timedelta(days=1)),
        "hours": 2, "description": "为独居老人代购生活用品", "evidence": ["https://example.org/photo/1.jpg"]}), 201)
    assert ok(client.get("/api/v1/me", headers=member))["points"]["pending"] == 1  # the home screen counts it
    queue = ok(client.get("/api/v1/approvals?status=pending", headers=secretary))
    assert [item["id"] for item in queue["items"]] == [f"record:{record['id']}"]
    ok(client.post(f"/api/v1/approvals/record:{record['id']}/approve", json={"comment": "属实"}, headers=secretary))

    # 7. Points: report 3 + activity 1.5 h + self-report 2 h, in both ledgers the items feed.
    year = period_containing(clock["now"], PeriodKind.YEAR).key
    points = ok(client.get(f"/api/v1/members/{zhao.id}/points?period={year}", headers=member))
    assert points["assessment"] == {"earned": 6.5, "deducted": 0, "net": 6.5}
    assert points["redeemable"] == 6.5 and points["standing"] == 6.5
    ledger = ok(client.get(f"/api/v1/members/{zhao.id}/ledger?ledger=assessment", headers=member))
    assert sorted((e["source_type"], e["item_code"], e["points"]) for e in ledger["items"]) == [
        ("checkin", "member.activity_hour", 1.5), ("record", "member.self_service_hour", 2),
        ("report", "member.report", 3)]
    home = ok(client.get("/api/v1/me", headers=member))
    assert home["points"]["pending"] == 0 and home["member"]["name"] == "赵·敏"
