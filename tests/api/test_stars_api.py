"""业务之星 over HTTP: propose → candidates with reasons → publish → objection → decision → finalize, the
public list of winners, who may do what, and bad input."""

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.credit import award
from points_service.domain.stars import runs as stars
from points_service.models import Report, ReportStatus, SourceType, SubjectType
from tests.factories import auth_header, make_world
from tests.factories.ledger import local, member_fact


@pytest.fixture
def world(app):
    world = make_world()
    for name, hours in (("alice", 4), ("carol", 4)):  # a tie on everything but the id
        member = world[name]
        for day in (1, 2, 3):
            award(member_fact(member, "member.activity_hour", units=hours, source_type=SourceType.CHECKIN),
                  at=local(2026, 8, day, 18))
        db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                              half="2026-H2", status=ReportStatus.CONFIRMED, decided_at=local(2026, 7, 2)))
    db.session.commit()
    return world


def call(client, world, method: str, url: str, who: str | None = "admin", json=None):
    headers = auth_header(world["users"][who]) if who else {}
    return client.open(f"/api/v1{url}", method=method, json=json, headers=headers)


def propose(client, world, who="admin", period="2026-Q3"):
    return call(client, world, "POST", "/stars/runs", who, {"period": period})


def test_an_admin_runs_the_quarter_from_proposal_to_final_result(client, world):
    created = propose(client, world)
    assert created.status_code == 201
    run = created.get_json()["data"]
    assert (run["status"], run["period"], run["scope_type"], run["candidate_count"]) == ("proposed", "2026-Q3",
                                                                                         "community", 3)
    assert [(w["member"]["name"], w["position"], w["points"]) for w in run["winners"]] == [("张晓丽", 1, 12),
                                                                                         ("王𠮷", 2, 12)]
    assert run["cutoff_at"] == "2026-10-01T00:00:00+08:00" and len(run["checksum"]) == 64

    page = call(client, world, "GET", f"/stars/runs/{run['id']}/candidates?eligible=false").get_json()["data"]
    assert page["total"] == 1 and page["items"][0]["member"]["name"] == "李·建国"
    assert [r["code"] for r in page["items"][0]["reasons"]] == ["min_activities", "min_points", "not_reported"]

    assert call(client, world, "GET", "/stars?period=2026-Q3", "bob").get_json()["data"]["items"] == []
    stars.publish_star_run(principal_for(world["users"]["admin"]), run["id"], now=local(2026, 10, 9))
    public = call(client, world, "GET", "/stars?period=2026-Q3", "bob").get_json()["data"]
    assert [(s["member"]["name"], s["status"], s["scope"]["name"]) for s in public["items"]] == [
        ("张晓丽", "publicity", "北门社区"), ("王𠮷", "publicity", "北门社区")]

    late = call(client, world, "POST", f"/stars/runs/{run['id']}/objections", "bob",
                {"member_id": world["alice"].id, "reason": "时长存疑"})
    assert late.status_code == 409 and late.get_json()["code"] == "invalid_transition"

    final = call(client, world, "POST", f"/stars/runs/{run['id']}/finalize")
    assert final.status_code == 200 and final.get_json()["data"]["status"] == "finalized"
    public = call(client, world, "GET", "/stars?period=2026-Q3", "alice").get_json()["data"]
    assert {s["status"] for s in public["items"]} == {"final"}
    again = propose(client, world)
    assert again.status_code == 409 and again.get_json()["code"] == "star_run_exists"


def test_an_objection_during_publicity_upheld_over_http_replaces_the_winner(client, world):
    run_id = propose(client, world).get_json()["data"]["id"]
    published = call(client, world, "POST", f"/stars/runs/{run_id}/publish")
    assert published.status_code == 200 and published.get_json()["data"]["publicity_ends_on"] is not None
    raised = call(client, world, "POST", f"/stars/runs/{run_id}/objections", "bob",
                  {"member_id": world["alice"].id, "reason": "服务时长有虚报"})
    assert raised.status_code == 201 and raised.get_json()["data"]["status"] == "open"
    blocked = call(client, world, "POST", f"/stars/runs/{run_id}/finalize")
    assert blocked.status_code == 409 and blocked.get_json()["code"] == "objections_open"

    objection_id = raised.get_json()["data"]["id"]
    decided = call(client, world, "POST", f"/stars/runs/{run_id}/objections/{objection_id}/decision", "admin",
                   {"upheld": True, "comment": "经核实属实"})
    assert decided.status_code == 200 and decided.get_json()["data"]["status"] == "upheld"
    run = call(client, world, "GET", f"/stars/runs/{run_id}").get_json()["data"]
    assert [w["member"]["name"] for w in run["winners"]] == ["王𠮷"]
    assert [o["status"] for o in run["objections"]] == ["upheld"]
    too_early = call(client, world, "POST", f"/stars/runs/{run_id}/finalize")
    assert too_early.status_code == 409 and too_early.get_json()["code"] == "publicity_not_ended"


@pytest.mark.parametrize(("who", "method", "url"), [
    ("alice", "POST", "/stars/runs/{run}/publish"),
    ("community_admin", "POST", "/stars/runs/{run}/publish"),
    ("community_admin", "POST", "/stars/runs/{run}/finalize"),
    ("alice", "GET", "/stars/runs/{run}"),
    ("secretary", "GET", "/stars/runs/{run}/candidates"),
    ("hr", "GET", "/stars/runs"),
])
def test_members_and_other_roles_cannot_run_or_review_selections(client, world, who, method, url):
    run_id = propose(client, world).get_json()["data"]["id"]
    response = call(client, world, method, url.format(run=run_id), who)
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_only_admins_propose_and_decide(client, world):
    assert propose(client, world, "community_admin").status_code == 403
    assert propose(client, world, None).status_code == 401


def test_a_community_admin_reviews_only_his_communitys_candidates(client, world):
    run_id = propose(client, world).get_json()["data"]["id"]
    page = call(client, world, "GET", f"/stars/runs/{run_id}/candidates", "community_admin").get_json()["data"]
    assert {c["member"]["name"] for c in page["items"]} == {"张晓丽", "王𠮷"} and page["total"] == 2


def test_a_community_admin_sees_only_his_communitys_winners_and_objections_in_the_run_detail(client, world):
    bob = world["bob"]  # 李·建国 of the south community: a winner there too
    for day in (1, 2, 3):
        award(member_fact(bob, "member.activity_hour", units=4, source_type=SourceType.CHECKIN),
              at=local(2026, 8, day, 18))
    db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=bob.id, community_id=bob.community_id,
                          half="2026-H2", status=ReportStatus.CONFIRMED, decided_at=local(2026, 7, 2)))
    db.session.commit()
    run_id = propose(client, world).get_json()["data"]["id"]
    proposed = call(client, world, "GET", f"/stars/runs/{run_id}", "community_admin").get_json()["data"]
    assert {w["member"]["name"] for w in proposed["winners"]} == {"张晓丽", "王𠮷"}  # not yet published either

    call(client, world, "POST", f"/stars/runs/{run_id}/publish")
    for who, member, reason in (("bob", world["alice"], "北门：时长存疑"), ("alice", bob, "南门：代签到")):
        raised = call(client, world, "POST", f"/stars/runs/{run_id}/objections", who,
                      {"member_id": member.id, "reason": reason})
        assert raised.status_code == 201

    north = call(client, world, "GET", f"/stars/runs/{run_id}", "community_admin").get_json()["data"]
    assert {w["member"]["name"] for w in north["winners"]} == {"张晓丽", "王𠮷"}
    assert [o["reason"] for o in north["objections"]] == ["北门：时长存疑"]
    everything = call(client, world, "GET", f"/stars/runs/{run_id}").get_json()["data"]
    assert {w["member"]["name"] for w in everything["winners"]} == {"张晓丽", "王𠮷", "李·建国"}
    assert [o["reason"] for o in everything["objections"]] == ["北门：时长存疑", "南门：代签到"]


@pytest.mark.parametrize(("body", "field"), [
    ({"period": "2026-13"}, "period"),
    ({"period": "2026-11"}, "period"),
    ({"period": "2026-Q3", "scope": "planet"}, "scope"),
    ({"period": "2026-Q3", "extra": 1}, "extra"),
    ({}, "period"),
])
def test_a_bad_proposal_is_422_naming_the_field(client, world, body, field):
    response = call(client, world, "POST", "/stars/runs", "admin", body)
    assert response.status_code == 422 and field in response.get_json()["data"]["errors"]


def test_bad_objections_and_decisions_are_422(client, world):
    run_id = propose(client, world).get_json()["data"]["id"]
    call(client, world, "POST", f"/stars/runs/{run_id}/publish")
    for body, field in (({"member_id": "1", "reason": "x"}, "member_id"), ({"member_id": 1}, "reason"),
                        ({"member_id": 999999, "reason": "不是候选人"}, "member_id")):
        response = call(client, world, "POST", f"/stars/runs/{run_id}/objections", "bob", body)
        assert response.status_code == 422 and field in response.get_json()["data"]["errors"]
    decision = call(client, world, "POST", f"/stars/runs/{run_id}/objections/1/decision", "admin", {"upheld": "yes"})
    assert decision.status_code == 422 and "upheld" in decision.get_json()["data"]["errors"]


def test_an_unpublished_run_answers_a_members_objection_like_a_missing_one(client, world):
    run_id = propose(client, world).get_json()["data"]["id"]
    body = {"member_id": world["alice"].id, "reason": "时长存疑"}
    unpublished = call(client, world, "POST", f"/stars/runs/{run_id}/objections", "bob", body)
    missing = call(client, world, "POST", "/stars/runs/999999/objections", "bob", body)
    assert unpublished.status_code == missing.status_code == 404
    assert unpublished.get_json()["code"] == missing.get_json()["code"] == "not_found"
    assert unpublished.get_json()["message"] == missing.get_json()["message"]
    reviewer = call(client, world, "POST", f"/stars/runs/{run_id}/objections", "community_admin", body)
    assert reviewer.status_code == 409 and reviewer.get_json()["code"] == "invalid_transition"  # he sees the run


def test_an_open_quarter_is_409_and_an_unknown_run_404(client, world):
    response = propose(client, world, period="2027-Q1")
    assert response.status_code == 409 and response.get_json()["code"] == "period_not_ended"
    assert call(client, world, "GET", "/stars/runs/999999").status_code == 404
    assert call(client, world, "GET", "/stars?period=2026-Q3&page_size=5&page=1").status_code == 200
    assert call(client, world, "GET", "/stars").status_code == 422


def test_an_admin_withdraws_a_published_star_which_stays_listed_as_withdrawn(client, world):
    run = propose(client, world).get_json()["data"]
    stars.publish_star_run(principal_for(world["users"]["admin"]), run["id"], now=local(2026, 10, 9))
    alice = next(w for w in run["winners"] if w["member"]["id"] == world["alice"].id)
    url = f"/stars/awards/{alice['id']}/withdraw"
    assert call(client, world, "POST", url, "bob", {"reason": "材料不实"}).status_code == 403
    assert call(client, world, "POST", url, "admin", {"reason": ""}).status_code == 422
    withdrawn = call(client, world, "POST", url, "admin", {"reason": "材料不实"})
    assert withdrawn.status_code == 201
    assert withdrawn.get_json()["data"]["award_type"] == "star"
    again = call(client, world, "POST", url, "admin", {"reason": "材料不实"})
    assert again.status_code == 409 and again.get_json()["code"] == "award_already_withdrawn"
    public = call(client, world, "GET", "/stars?period=2026-Q3", "bob").get_json()["data"]["items"]
    assert [(s["member"]["id"], s["withdrawn"], s["withdrawn_reason"]) for s in public] == [
        (world["alice"].id, True, "材料不实"), (world["carol"].id, False, None)]
    assert public[0]["withdrawn_at"].endswith("+08:00")


def test_a_winner_an_upheld_objection_removes_reads_in_his_inbox_that_the_result_changed_not_who_objected(
        client, world):
    run_id = propose(client, world).get_json()["data"]["id"]
    call(client, world, "POST", f"/stars/runs/{run_id}/publish")
    raised = call(client, world, "POST", f"/stars/runs/{run_id}/objections", "bob",
                  {"member_id": world["alice"].id, "reason": "服务时长有虚报"})
    call(client, world, "POST", f"/stars/runs/{run_id}/objections/{raised.get_json()['data']['id']}/decision",
         "admin", {"upheld": True, "comment": "经核实属实"})

    newest = call(client, world, "GET", "/me/messages?page_size=1", "alice").get_json()["data"]["items"][0]
    assert (newest["event"], newest["title"], newest["link"]) == ("star_removed", "业务之星评选结果变更",
                                                                  "/pages/honors/honors")
    assert "2026年第3季度" in newest["body"]
    for secret in ("服务时长有虚报", "经核实属实", world["bob"].name):
        assert secret not in newest["body"]
