"""Reading points and ledgers over HTTP, admin corrections, and who may see what."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.domain.periods import parse_period
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import LedgerEntry
from tests.factories import auth_header, make_world
from tests.factories.ledger import local, member_fact, org_fact


@pytest.fixture
def world(app):
    world = make_world()
    award(member_fact(world["alice"], "member.activity_hour", units=3), at=local(2026, 11, 2, 10))
    award(member_fact(world["alice"], "member.no_show"), at=local(2026, 11, 3, 10))
    award(member_fact(world["bob"], "member.micro_wish"), at=local(2026, 11, 4, 10))
    award(org_fact(world["finance"], "org.project_done"), at=local(2026, 11, 5, 10))
    return world


def get(client, url, user):
    return client.get(url, headers=auth_header(user))


def test_a_member_reads_the_three_figures_apart_with_labels(client, world):
    body = get(client, f"/api/v1/members/{world['alice'].id}/points?period=2026-11", world["users"]["alice"]).get_json()
    data = body["data"]
    assert data["period"] == "2026-11"
    assert data["assessment"] == {"earned": 3, "deducted": -5, "net": -2}
    assert data["standing"] == -2 and data["redeemable"] == 3
    assert {row["item_code"]: (row["points"], row["count"]) for row in data["by_item"]} == {
        "member.activity_hour": (3, 1), "member.no_show": (-5, 1)}
    assert set(data["labels"]) == {"assessment", "standing", "redeemable"}


def test_a_period_outside_the_credits_shows_zero_earned(client, world):
    data = get(client, f"/api/v1/members/{world['alice'].id}/points?period=2026-Q3", world["users"]["alice"]).get_json()
    assert data["data"]["assessment"]["net"] == 0 and data["data"]["by_item"] == []


def test_the_ledger_lists_entries_newest_first_with_item_names_and_rfc3339_times(client, world):
    body = get(client, f"/api/v1/members/{world['alice'].id}/ledger?ledger=assessment", world["users"]["alice"])
    items = body.get_json()["data"]["items"]
    assert [i["item_code"] for i in items] == ["member.no_show", "member.activity_hour"]
    assert items[0]["item_name"] == "报名后无故缺席" and items[0]["credited_at"] == "2026-11-03T10:00:00+08:00"
    assert items[1]["policy_version"] == 1 and items[1]["source_type"] == "record"


def test_a_member_cannot_read_another_members_points_or_ledger(client, world):
    for path in ("points", "ledger"):
        response = get(client, f"/api/v1/members/{world['bob'].id}/{path}", world["users"]["alice"])
        assert response.status_code == 404 and response.get_json()["code"] == "not_found"  # no existence leak


@pytest.mark.parametrize("viewer,member,allowed", [
    ("secretary", "alice", True), ("secretary", "bob", False),
    ("community_admin", "alice", True), ("community_admin", "bob", False),
    ("hr", "bob", True), ("admin", "bob", True),
])
def test_scoped_roles_see_only_members_in_their_scope(client, world, viewer, member, allowed):
    response = get(client, f"/api/v1/members/{world[member].id}/points", world["users"][viewer])
    assert response.status_code == (200 if allowed else 404)


def test_organization_points_keep_its_own_points_apart_from_its_members_rollup(client, world):
    data = get(client, f"/api/v1/organizations/{world['finance'].id}/points?period=2026-11",
               world["users"]["hr"]).get_json()["data"]
    assert data["assessment"]["net"] == 10
    assert data["members"]["member_count"] == 2 and data["members"]["participating_members"] == 2
    assert data["members"]["total_points"] == 3 and data["members"]["per_capita_points"] == 1.5
    assert "不计入组织自身积分" in data["members"]["label"]


def test_only_admins_adjust_and_an_adjustment_is_audited_and_idempotent(client, world):
    payload = {"subject_type": "member", "subject_id": world["bob"].id, "points": 2.5, "reason": "补录活动"}
    forbidden = client.post("/api/v1/adjustments", json=payload, headers=auth_header(world["users"]["secretary"]))
    assert forbidden.status_code == 403
    headers = {**auth_header(world["users"]["admin"]), "Idempotency-Key": "adjust-bob-0001"}
    first = client.post("/api/v1/adjustments", json=payload, headers=headers)
    again = client.post("/api/v1/adjustments", json=payload, headers=headers)
    assert first.status_code == 201 and first.get_json()["data"]["points"] == 2.5
    assert again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    points = get(client, f"/api/v1/members/{world['bob'].id}/points?period=2026", world["users"]["admin"])
    assert points.get_json()["data"]["standing"] == 7.5


@pytest.mark.parametrize("points", [0, 1e-3, "abc", True, 100000, None])
def test_bad_adjustments_are_refused_with_the_field_named(client, world, points):
    payload = {"subject_type": "member", "subject_id": world["bob"].id, "points": points, "reason": "x"}
    response = client.post("/api/v1/adjustments", json=payload, headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 422 and "points" in response.get_json()["data"]["errors"]


def test_reversing_twice_is_a_conflict_and_a_reversal_cannot_be_reversed(client, world):
    ledger = get(client, f"/api/v1/members/{world['alice'].id}/ledger?ledger=assessment", world["users"]["admin"])
    entry_id = ledger.get_json()["data"]["items"][0]["id"]
    admin = auth_header(world["users"]["admin"])
    first = client.post(f"/api/v1/ledger/{entry_id}/reverse", json={"reason": "误扣"}, headers=admin)
    assert first.status_code == 201 and first.get_json()["data"]["points"] == 5
    second = client.post(f"/api/v1/ledger/{entry_id}/reverse", json={"reason": "误扣"}, headers=admin)
    assert second.status_code == 409 and second.get_json()["code"] == "already_reversed"
    reversal_id = first.get_json()["data"]["id"]
    third = client.post(f"/api/v1/ledger/{reversal_id}/reverse", json={"reason": "x"}, headers=admin)
    assert third.status_code == 409 and third.get_json()["code"] == "not_reversible"
    member = client.post(f"/api/v1/ledger/{entry_id}/reverse", json={"reason": "x"},
                         headers=auth_header(world["users"]["alice"]))
    assert member.status_code == 403


SETTLEMENT_RUNS = {"decay": ("standing_decay", "2026-10"), "reset": ("assessment_reset", "2026"),
                   "expiry": ("redeemable_expiry", "2026-10")}


@pytest.mark.parametrize("kind", list(SETTLEMENT_RUNS))
def test_an_entry_of_a_settlement_job_is_not_reversed_and_an_award_still_is(client, world, kind):
    alice, admin = world["alice"], auth_header(world["users"]["admin"])
    [wish, _] = award(member_fact(alice, "member.micro_wish"), at=local(2025, 10, 5, 9))  # expires end of October 2026
    for day in (5, 6):
        award(member_fact(alice, "member.commend_city"), at=local(2026, 10, day, 9))
    job, period = SETTLEMENT_RUNS[kind]
    run_job(JOBS_BY_ID[job], parse_period(period))
    [settled] = db.session.scalars(sa.select(LedgerEntry.id).where(
        LedgerEntry.kind == kind, LedgerEntry.subject_type == "member", LedgerEntry.subject_id == alice.id)).all()
    url = f"/api/v1/members/{alice.id}/points?period=2027"
    before, points_before = entry_count(), get(client, url, world["users"]["admin"]).get_json()["data"]
    refused = client.post(f"/api/v1/ledger/{settled}/reverse", json={"reason": "结算有误"}, headers=admin)
    assert (refused.status_code, refused.get_json()["code"]) == (409, "settlement_entry_not_reversible")
    assert "积分调整" in refused.get_json()["message"] and entry_count() == before
    assert get(client, url, world["users"]["admin"]).get_json()["data"] == points_before
    reversed_award = client.post(f"/api/v1/ledger/{wish.id}/reverse", json={"reason": "重复上报"}, headers=admin)
    assert reversed_award.status_code == 201 and reversed_award.get_json()["data"]["points"] == -5


def entry_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))


def test_unknown_entries_and_members_are_404_and_bad_periods_422(client, world):
    admin = auth_header(world["users"]["admin"])
    assert client.post("/api/v1/ledger/999999/reverse", json={"reason": "x"}, headers=admin).status_code == 404
    assert client.get("/api/v1/members/999999/points", headers=admin).status_code == 404
    bad = client.get(f"/api/v1/members/{world['alice'].id}/points?period=2026-Q9", headers=admin)
    assert bad.status_code == 422 and "period" in bad.get_json()["data"]["errors"]


@pytest.mark.parametrize("path", ["members/{alice}/points", "organizations/{finance}/points"])
def test_points_for_a_single_day_are_refused_rather_than_shown_as_zero(client, world, path):
    """Totals are kept for months, quarters, halves and years: a day's figures would read 0 beside its items."""
    url = "/api/v1/" + path.format(alice=world["alice"].id, finance=world["finance"].id)
    response = client.get(f"{url}?period=2026-11-02", headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 422 and "period" in response.get_json()["data"]["errors"]
    assert client.get(f"{url}?period=2026-11", headers=auth_header(world["users"]["admin"])).status_code == 200


def test_me_gives_a_member_the_home_screen_figures_without_a_rank_yet(client, app):
    from points_service.db import utcnow

    world = make_world()
    now = utcnow()
    award(member_fact(world["alice"], "member.micro_wish"), at=now)
    body = client.get("/api/v1/me", headers=auth_header(world["users"]["alice"])).get_json()["data"]["points"]
    assert (body["month"], body["quarter"], body["year"]) == (5, 5, 5)
    assert (body["standing"], body["redeemable"], body["pending"]) == (5, 5, 0)
    assert body["expiring"]["points"] == 0 and body["expiring"]["on"].endswith("T00:00:00+08:00")
    console = client.get("/api/v1/me", headers=auth_header(world["users"]["admin"])).get_json()["data"]
    assert console["points"] is None


def test_points_expiring_at_the_next_run_are_announced(client, app):
    world = make_world()
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2025, 10, 15))
    from points_service.domain.ledger.reading import home_summary

    summary = home_summary(world["alice"].id, now=local(2026, 10, 20))
    assert summary["expiring"] == {"points": 5, "on": local(2026, 11, 1)}
    assert home_summary(world["alice"].id, now=local(2026, 9, 20))["expiring"]["points"] == 0


@pytest.mark.parametrize(("period", "status"), [("2025-Q4", 201), ("2025", 201), ("2099-Q1", 422),
                                                ("2025-Q5", 422), ("2025-11-03", 422), (2025, 422)])
def test_an_adjustment_may_name_the_past_period_it_corrects(client, world, period, status):
    payload = {"subject_type": "member", "subject_id": world["bob"].id, "points": 2, "reason": "更正去年漏记",
               "period": period}
    response = client.post("/api/v1/adjustments", json=payload, headers=auth_header(world["users"]["admin"]))
    assert response.status_code == status
    body = response.get_json()
    if status == 201:
        assert body["data"]["corrects_period"] == period
    else:
        assert "period" in body["data"]["errors"]
