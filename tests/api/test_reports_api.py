"""双报到 over HTTP as the mini-program and the console use it: report, confirm or reject, points, scoping,
forbidden cases, and the secretary's view of who has (not) reported."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.reports import reporting as reports
from points_service.models import Affiliation, ApprovalEvent, AuditEntry, LedgerEntry, Report, Role, SourceType
from tests.factories import auth_header, make_member, make_user, make_world

LISTS = {"resources": ["法律咨询志愿服务", "会议室"], "needs": ["老旧小区加装电梯"], "projects": ["共建“四点半课堂”"]}


@pytest.fixture
def world(app):
    world = make_world()
    users = world["users"]
    users["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    users["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    world["dave"] = make_member(world["fin1"], world["north"], name="赵未报")
    db.session.commit()
    return world


def call(client, method: str, url: str, user=None, json=None, headers=None):
    auth = auth_header(user) if user is not None else {}
    return client.open(f"/api/v1{url}", method=method, json=json, headers={**auth, **(headers or {})})


def report(client, world, who: str = "alice", community: str = "north"):
    return call(client, "POST", "/reports", world["users"][who], {"community_id": world[community].id})


def decide(client, world, report_id: int, who: str = "community_admin", decision: str = "confirm", body=None):
    return call(client, "POST", f"/reports/{report_id}/{decision}", world["users"][who], body or {})


def ledger(report_id: int) -> list[tuple[str, str, int]]:
    rows = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.source_type == SourceType.REPORT,
                                                          LedgerEntry.source_id == str(report_id)))
    return sorted((e.ledger.value, e.item_code, int(e.points)) for e in rows)


def test_a_member_reports_and_the_community_confirms_crediting_three_points_once(client, world):
    submitted = report(client, world)
    assert submitted.status_code == 201
    data = submitted.get_json()["data"]
    assert data["status"] == "pending" and data["half"] == reports.current_half().key
    assert data["subject"] == {"type": "member", "id": world["alice"].id, "name": "张晓丽"}
    assert data["community"] == {"id": world["north"].id, "name": "北门社区"} and data["decided_at"] is None

    queue = call(client, "GET", "/reports?status=pending", world["users"]["community_admin"]).get_json()["data"]
    assert [item["id"] for item in queue["items"]] == [data["id"]] and queue["total"] == 1

    confirmed = decide(client, world, data["id"], body={"grid_id": world["north_grid"].id})
    assert confirmed.status_code == 200
    body = confirmed.get_json()["data"]
    assert body["status"] == "confirmed" and body["grid"]["id"] == world["north_grid"].id
    assert body["decided_by_id"] == world["users"]["community_admin"].id and body["decided_at"].endswith("+08:00")
    assert ledger(data["id"]) == [("assessment", "member.report", 3), ("redeemable", "member.report", 3)]

    again = decide(client, world, data["id"])
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_transition"
    assert ledger(data["id"]) == [("assessment", "member.report", 3), ("redeemable", "member.report", 3)]
    events = db.session.scalars(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "report")).all()
    assert [(e.target_id, e.to_status) for e in events] == [(data["id"], "confirmed")]
    assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "report.confirm")).target_id == str(
        data["id"])


def test_a_member_report_in_a_later_half_earns_the_rereport_item(client, world):
    earlier = reports.current_half().previous().start + timedelta(days=10)
    first = reports.submit_member_report(principal_for(world["users"]["alice"]), world["north"].id, now=earlier)
    reports.confirm_report(principal_for(world["users"]["community_admin"]), first.id, now=earlier)
    report_id = report(client, world).get_json()["data"]["id"]
    assert decide(client, world, report_id).status_code == 200
    assert ledger(report_id) == [("assessment", "member.rereport", 1)]


def test_a_pending_report_never_counts_in_points(client, world):
    report(client, world)
    points = call(client, "GET", f"/members/{world['alice'].id}/points", world["users"]["alice"]).get_json()["data"]
    assert points["assessment"]["earned"] == 0 and points["by_item"] == []


def test_a_second_report_in_the_same_half_is_409_already_reported(client, world):
    assert report(client, world).status_code == 201
    second = report(client, world, community="south")
    assert second.status_code == 409 and second.get_json()["code"] == "already_reported"


def test_rejecting_needs_a_reason_and_a_rejected_member_may_report_again(client, world):
    report_id = report(client, world).get_json()["data"]["id"]
    missing = decide(client, world, report_id, decision="reject")
    assert missing.status_code == 422 and "reason" in missing.get_json()["data"]["errors"]
    blank = decide(client, world, report_id, decision="reject", body={"reason": "   "})
    assert blank.status_code == 422
    rejected = decide(client, world, report_id, decision="reject", body={"reason": "请到实际居住的社区报到"})
    assert rejected.status_code == 200
    assert (rejected.get_json()["data"]["status"], rejected.get_json()["data"]["reason"]) == (
        "rejected", "请到实际居住的社区报到")
    assert ledger(report_id) == []
    assert decide(client, world, report_id).status_code == 409
    assert report(client, world).status_code == 201
    assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "report.reject")) is not None


def test_an_organization_reports_with_its_three_lists_and_confirmation_credits_org_report(client, world):
    body = {"community_id": world["north"].id, **LISTS}
    submitted = call(client, "POST", f"/organizations/{world['finance'].id}/reports", world["users"]["org_admin"], body)
    assert submitted.status_code == 201
    data = submitted.get_json()["data"]
    assert data["subject"] == {"type": "organization", "id": world["finance"].id, "name": "市财政局党委"}
    assert {key: data[key] for key in LISTS} == LISTS and data["status"] == "pending"
    assert decide(client, world, data["id"]).status_code == 200
    assert ledger(data["id"]) == [("assessment", "org.report", 5)]
    org_ledger = call(client, "GET", f"/organizations/{world['finance'].id}/ledger", world["users"]["hr"])
    assert [(e["item_code"], e["source_type"]) for e in org_ledger.get_json()["data"]["items"]] == [
        ("org.report", "report")]


@pytest.mark.parametrize("change,field", [
    ({"resources": [f"资源{i}" for i in range(21)]}, "resources"),
    ({"needs": ["长" * 101]}, "needs"),
    ({"projects": ["\u202e反转"]}, "projects"),
    ({"resources": [], "projects": []}, "projects"),
    ({"community_id": "1"}, "community_id"),
])
def test_organization_report_lists_are_checked(client, world, change, field):
    body = {"community_id": world["north"].id, **LISTS, **change}
    response = call(client, "POST", f"/organizations/{world['finance'].id}/reports", world["users"]["org_admin"], body)
    assert response.status_code == 422 and field in response.get_json()["data"]["errors"]


def test_a_branch_cannot_make_an_organization_report(client, world):
    body = {"community_id": world["north"].id, **LISTS}
    response = call(client, "POST", f"/organizations/{world['fin1'].id}/reports", world["users"]["secretary"], body)
    assert response.status_code == 422 and "organization_id" in response.get_json()["data"]["errors"]


@pytest.mark.parametrize("community", ["street", "north_grid", "city"])
def test_reports_go_to_a_community_level_region_only(client, world, community):
    response = report(client, world, community=community)
    assert response.status_code == 422 and "community_id" in response.get_json()["data"]["errors"]


def test_an_unknown_community_is_refused_with_the_field_named(client, world):
    response = call(client, "POST", "/reports", world["users"]["alice"], {"community_id": 999_999})
    assert response.status_code == 422 and "community_id" in response.get_json()["data"]["errors"]


def test_a_grid_of_another_community_cannot_be_assigned(client, world):
    report_id = report(client, world).get_json()["data"]["id"]
    response = decide(client, world, report_id, body={"grid_id": world["south_grid"].id})
    assert response.status_code == 422 and "grid_id" in response.get_json()["data"]["errors"]


def test_a_member_cannot_report_for_someone_else_the_server_derives_who_reports(client, world):
    body = {"community_id": world["north"].id, "member_id": world["bob"].id}
    response = call(client, "POST", "/reports", world["users"]["alice"], body)
    assert response.status_code == 422 and "member_id" in response.get_json()["data"]["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Report)) == 0


def test_a_console_user_without_a_member_record_cannot_report(client, world):
    response = report(client, world, who="community_admin")
    assert response.status_code == 403


@pytest.mark.parametrize("who", ["alice", "bob", "south_admin", "hr", "secretary"])
def test_only_the_community_admin_of_that_community_decides(client, world, who):
    report_id = report(client, world).get_json()["data"]["id"]
    # Without the role: 403 before anything is read; another community's admin: 404, like a missing report.
    refusal = (404, "not_found") if who == "south_admin" else (403, "forbidden")
    for decision, body in (("confirm", {}), ("reject", {"reason": "不同意"})):
        response = decide(client, world, report_id, who=who, decision=decision, body=body)
        assert (response.status_code, response.get_json()["code"]) == refusal
    assert db.session.get(Report, report_id).status == "pending"


@pytest.mark.parametrize("who", ["alice", "secretary", "hr", "community_admin"])
def test_an_organization_report_by_a_non_manager_is_forbidden(client, world, who):
    body = {"community_id": world["north"].id, **LISTS}
    response = call(client, "POST", f"/organizations/{world['finance'].id}/reports", world["users"][who], body)
    assert response.status_code == (404 if who == "secretary" else 403)  # a branch's secretary does not see it


@pytest.mark.parametrize("method,url,body", [
    ("POST", "/reports/999999/confirm", {}),
    ("POST", "/reports/999999/reject", {"reason": "无"}),
    ("POST", "/organizations/999999/reports", {"community_id": 1, **LISTS}),
    ("GET", "/reports/status?organization_id=999999", None),
])
def test_unknown_ids_are_404(client, world, method, url, body):
    response = call(client, method, url, world["users"]["admin"], body)
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"


def test_anonymous_callers_are_401(client, world):
    assert call(client, "POST", "/reports", json={"community_id": world["north"].id}).status_code == 401
    assert call(client, "GET", "/reports").status_code == 401


@pytest.mark.parametrize("viewer,visible", [
    ("alice", {"alice"}), ("bob", {"bob"}), ("community_admin", {"alice", "org"}), ("south_admin", {"bob"}),
    ("secretary", {"alice"}), ("hr", {"alice", "bob", "org"}), ("admin", {"alice", "bob", "org"}),
])
def test_the_report_list_is_scoped_to_the_viewer(client, world, viewer, visible):
    ids = {
        "alice": report(client, world).get_json()["data"]["id"],
        "bob": report(client, world, "bob", "south").get_json()["data"]["id"],
        "org": call(client, "POST", f"/organizations/{world['finance'].id}/reports", world["users"]["org_admin"],
                    {"community_id": world["north"].id, **LISTS}).get_json()["data"]["id"],
    }
    listed = call(client, "GET", "/reports?page_size=100", world["users"][viewer]).get_json()["data"]["items"]
    assert {item["id"] for item in listed} == {ids[name] for name in visible}


def test_the_secretary_sees_who_reported_who_never_did_and_the_report_rate(client, world):
    decide(client, world, report(client, world).get_json()["data"]["id"])
    response = call(client, "GET", f"/reports/status?organization_id={world['fin1'].id}", world["users"]["secretary"])
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["organization"]["id"] == world["fin1"].id and data["half"] == reports.current_half().key
    rows = {row["member"]["name"]: row for row in data["items"]}
    assert rows["张晓丽"]["reported_this_half"] is True and rows["张晓丽"]["half_status"] == "confirmed"
    assert rows["赵未报"]["reported_ever"] is False and rows["赵未报"]["half_status"] is None
    assert rows["赵未报"]["community"]["name"] == "北门社区"
    assert (data["member_count"], data["reported_count"], data["report_rate"]) == (2, 1, 0.5)
    assert data["total"] == 2 and [b["organization"]["id"] for b in data["branches"]] == [world["fin1"].id]


def test_hr_sees_the_department_with_a_rate_per_branch(client, world):
    decide(client, world, report(client, world).get_json()["data"]["id"])
    data = call(client, "GET", f"/reports/status?organization_id={world['finance'].id}&page_size=1",
                world["users"]["hr"]).get_json()["data"]
    assert (data["member_count"], data["report_rate"], data["total"], len(data["items"])) == (3, 0.3333, 3, 1)
    assert [(b["organization"]["name"], b["report_rate"]) for b in data["branches"]] == [
        ("财政局第一党支部", 0.5), ("财政局第二党支部", 0)]


def test_a_closed_halfs_status_ignores_a_confirmation_made_after_its_end(client, world):
    last = reports.current_half().previous()
    db.session.execute(sa.update(Affiliation).values(valid_from=last.start))
    db.session.commit()
    users = world["users"]
    late = reports.submit_member_report(principal_for(users["alice"]), world["north"].id,
                                        now=last.start + timedelta(days=1))
    reports.confirm_report(principal_for(users["community_admin"]), late.id, now=last.end + timedelta(minutes=5))
    data = call(client, "GET", f"/reports/status?organization_id={world['fin1'].id}&half={last.key}",
                users["secretary"]).get_json()["data"]
    rows = {row["member"]["name"]: row for row in data["items"]}
    assert rows["张晓丽"]["half_status"] == "pending" and rows["张晓丽"]["reported_this_half"] is False
    assert (data["member_count"], data["reported_count"], data["report_rate"]) == (2, 0, 0)


@pytest.mark.parametrize("who,org,status", [
    ("alice", "fin1", 403), ("community_admin", "fin1", 403), ("secretary", "finance", 403),
    ("secretary", "fin2", 403), ("admin", "edu1", 200),
])
def test_the_report_status_is_for_the_organizations_managers_only(client, world, who, org, status):
    response = call(client, "GET", f"/reports/status?organization_id={world[org].id}", world["users"][who])
    assert response.status_code == status


def test_the_status_half_must_be_a_half_year(client, world):
    url = f"/reports/status?organization_id={world['fin1'].id}&half=2026-Q3"
    response = call(client, "GET", url, world["users"]["secretary"])
    assert response.status_code == 422 and "half" in response.get_json()["data"]["errors"]


def test_a_retried_report_with_the_same_idempotency_key_replays_the_first_response(client, world):
    headers = {"Idempotency-Key": "report-alice-0001"}
    body = {"community_id": world["north"].id}
    first = call(client, "POST", "/reports", world["users"]["alice"], body, headers)
    replay = call(client, "POST", "/reports", world["users"]["alice"], body, headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.get_json() == first.get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Report)) == 1
