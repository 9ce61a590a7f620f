"""Self-reports and approvals over HTTP as the mini-program and the console use them: submitting (with
Idempotency-Key), the scoped queue, single and batch decisions, request-info and resubmission, proposals,
and for every approval route a forbidden case and an item outside one's scope answering like a missing one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from points_service.api.fields import MAX_ROW_ID
from points_service.db import db, utcnow
from points_service.domain.accounts import users as accounts
from points_service.domain.periods import to_rfc3339
from points_service.models import ActivityStatus, LedgerEntry, Record, RecordStatus, Role, SourceType
from tests.factories import auth_header, make_user, make_world
from tests.factories.records import grant, make_proposal


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(accounts, "hash_password", lambda password: generate_password_hash(password, "pbkdf2:sha256:1"))


@pytest.fixture
def world(app):
    world = make_world()
    users = world["users"]
    users["other_secretary"] = make_user((Role.BRANCH_SECRETARY, world["fin2"].id), username="fin2_secretary")
    users["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    users["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    db.session.commit()
    return world


def call(client, method: str, url: str, user=None, json=None, headers=None):
    auth = auth_header(user) if user is not None else {}
    return client.open(f"/api/v1{url}", method=method, json=json, headers={**auth, **(headers or {})})


def body(item_code: str = "member.self_service_hour", **overrides) -> dict:
    values = {"item_code": item_code, "occurred_at": to_rfc3339(utcnow() - timedelta(days=1)),
              "description": "为独居老人代购药品", "evidence": ["https://img.example.cn/wish/1.jpg"]}
    if item_code.endswith("_hour"):
        values["hours"] = 2
    return {**values, **overrides}


def submit(client, world, who: str = "alice", **overrides):
    response = call(client, "POST", "/records", world["users"][who], body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def decide(client, world, approval_id: str, who: str, decision: str = "approve", payload=None):
    return call(client, "POST", f"/approvals/{approval_id}/{decision}", world["users"][who], payload or {})


def awards(record_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(
        LedgerEntry.source_type == SourceType.RECORD, LedgerEntry.source_id == str(record_id)))


# ------------------------------------------------------------------------------------------------ submitting

def test_a_member_self_reports_and_gets_a_pending_record_routed_to_his_branch(client, world):
    data = submit(client, world, hours=2.5)
    assert data["status"] == "pending" and data["units"] == 2.5 and data["route_role"] == "branch_secretary"
    assert data["approval_id"] == f"record:{data['id']}" and data["item_name"] == "自主服务上报（每小时，需审核）"
    assert data["occurred_at"].endswith("+08:00") and data["evidence"] == ["https://img.example.cn/wish/1.jpg"]


def test_a_self_report_answers_from_the_rows_it_wrote_without_reading_them_or_the_policy_again(
        client, world, statements):
    submit(client, world)  # the first one stores and caches the policy in force
    auth = auth_header(world["users"]["alice"])
    statements.clear()
    response = client.post("/api/v1/records", json=body(), headers=auth)
    assert response.status_code == 201 and response.get_json()["data"]["item_name"] == "自主服务上报（每小时，需审核）"
    # his principal (with his branch and community), the policy in force's key, the record, its event
    verbs = [statement.split()[0].upper() for statement in statements]
    # PostgreSQL writes the record and its event in one statement (a CTE), SQLite in two
    writes = ["WITH"] if db.engine.dialect.name == "postgresql" else ["INSERT", "INSERT"]
    assert verbs == ["SELECT", "SELECT", *writes], statements


def test_the_same_idempotency_key_and_body_give_the_same_record_once(client, world):
    headers = {"Idempotency-Key": "self-report-0001"}
    payload = body()
    first = call(client, "POST", "/records", world["users"]["alice"], payload, headers)
    again = call(client, "POST", "/records", world["users"]["alice"], payload, headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 1
    other = call(client, "POST", "/records", world["users"]["alice"], {**payload, "hours": 3}, headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_an_auto_item_cannot_be_self_reported(client, world):
    response = call(client, "POST", "/records", world["users"]["alice"], body("member.activity_hour"))
    assert response.status_code == 422
    assert "member.activity_hour" in response.get_json()["data"]["errors"]["item_code"][0]


@pytest.mark.parametrize("evidence", [
    ["http://img.example.cn/1.jpg"],
    ["javascript:alert(1)"],
    ["ftp://img.example.cn/1.jpg"],
    ["https://"],
    ["不是链接"],
    [f"https://img.example.cn/{'a' * 500}.jpg"],
    [f"https://img.example.cn/{n}.jpg" for n in range(10)],
    "https://img.example.cn/1.jpg",
    [7],
])
def test_evidence_must_be_at_most_nine_https_links(client, world, evidence):
    response = call(client, "POST", "/records", world["users"]["alice"], body(evidence=evidence))
    assert response.status_code == 422 and "evidence" in response.get_json()["data"]["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 0


@pytest.mark.parametrize("overrides,field", [
    ({"hours": True}, "hours"),
    ({"hours": 2.555}, "hours"),
    ({"description": ""}, "description"),
    ({"description": "字" * 501}, "description"),
    ({"description": "正常\u202e反转"}, "description"),
    ({"occurred_at": "2026-11-01T09:00:00"}, "occurred_at"),
    ({"status": "approved"}, "status"),
    ({"route_scope_id": 1}, "route_scope_id"),
])
def test_bad_fields_are_refused_by_name(client, world, overrides, field):
    response = call(client, "POST", "/records", world["users"]["alice"], body(**overrides))
    assert response.status_code == 422 and field in response.get_json()["data"]["errors"]


def test_nine_evidence_links_and_no_evidence_are_both_fine(client, world):
    assert len(submit(client, world, evidence=[f"https://img.example.cn/{n}.jpg" for n in range(9)])["evidence"]) == 9
    assert submit(client, world, evidence=[])["evidence"] == []


def test_an_org_admin_reports_a_project_for_his_department(client, world):
    payload = {key: value for key, value in body("org.project_done").items() if key != "hours"}
    response = call(client, "POST", f"/organizations/{world['finance'].id}/records", world["users"]["org_admin"],
                    payload)
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert (data["subject_type"], data["subject_id"], data["route_role"]) == (
        "organization", world["finance"].id, "community_admin")
    refused = call(client, "POST", f"/organizations/{world['finance'].id}/records", world["users"]["hr"], payload)
    assert refused.status_code == 403


def test_a_member_lists_only_his_own_records(client, world):
    mine = submit(client, world)
    submit(client, world, "bob")
    listed = call(client, "GET", "/records?status=pending", world["users"]["alice"]).get_json()["data"]
    assert [item["id"] for item in listed["items"]] == [mine["id"]] and listed["total"] == 1


# -------------------------------------------------------------------------------------------------- queue

def test_a_member_has_no_approvals_queue(client, world):
    response = call(client, "GET", "/approvals", world["users"]["alice"])
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    assert call(client, "GET", "/approvals").status_code == 401


def test_the_secretary_sees_his_branchs_pending_records_with_masked_phones(client, world):
    record = submit(client, world)
    submit(client, world, "bob")
    data = call(client, "GET", "/approvals?status=pending", world["users"]["secretary"]).get_json()["data"]
    assert data["total"] == 1
    item = data["items"][0]
    assert item["id"] == f"record:{record['id']}" and item["kind"] == "record" and item["status"] == "pending"
    assert item["subject"]["name"] == "张晓丽" and item["subject"]["phone"].count("*") == 4
    assert item["actions"] == ["approve", "reject", "request_info"] and item["submitted_at"].endswith("+08:00")


def test_a_proposed_activity_waits_in_the_secretarys_then_the_community_admins_queue(client, world):
    proposal = make_proposal(world["north"], world["fin1"], created_by=world["users"]["org_admin"])
    approval_id = f"activity:{proposal.id}"
    queue = call(client, "GET", "/approvals", world["users"]["secretary"]).get_json()["data"]["items"]
    assert [(i["id"], i["kind"], i["step"]) for i in queue] == [(approval_id, "activity", "organization")]
    assert decide(client, world, approval_id, "community_admin").status_code == 403
    first = decide(client, world, approval_id, "secretary")
    assert first.status_code == 200 and first.get_json()["data"]["step"] == "community"
    second = decide(client, world, approval_id, "community_admin", payload={"comment": "同意承办"})
    assert second.status_code == 200 and second.get_json()["data"]["status"] == "approved"
    db.session.expire_all()
    assert proposal.status == ActivityStatus.PUBLISHED


# ---------------------------------------------------------------------------------------------- deciding

def test_approval_credits_the_points_and_shows_in_the_members_points(client, world):
    record = submit(client, world, hours=3)
    alice = world["users"]["alice"]
    before = call(client, "GET", f"/members/{world['alice'].id}/points", alice).get_json()["data"]
    assert before["assessment"]["earned"] == 0  # pending counts nowhere
    response = decide(client, world, f"record:{record['id']}", "secretary", payload={"comment": "属实"})
    assert response.status_code == 200 and response.get_json()["data"]["status"] == "approved"
    after = call(client, "GET", f"/members/{world['alice'].id}/points", alice).get_json()["data"]
    assert after["assessment"]["earned"] == 3 and awards(record["id"]) == 2


@pytest.fixture
def statements_and_commits(app):
    """The statements the next requests send, and COMMIT where a transaction commits."""
    seen: list[str] = []

    def statement(_conn, _cursor, text, *_args):
        if not text.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            seen.append(text)

    def commit(_conn):
        seen.append("COMMIT")
    sa.event.listen(db.engine, "before_cursor_execute", statement)
    sa.event.listen(db.engine, "commit", commit)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", statement)
    sa.event.remove(db.engine, "commit", commit)


@pytest.mark.parametrize("decision,payload", [("approve", {"comment": "属实"}), ("reject", {"reason": "时间不符"})])
def test_a_decision_answers_with_the_item_as_decided_reading_only_its_subject_after_the_commit(
        client, world, statements_and_commits, decision, payload):
    record = submit(client, world, hours=3)
    auth = auth_header(world["users"]["secretary"])
    statements_and_commits.clear()
    response = client.post(f"/api/v1/approvals/record:{record['id']}/{decision}", json=payload, headers=auth)
    item = response.get_json()["data"]
    assert response.status_code == 200 and item["status"] == ("approved" if decision == "approve" else "rejected")
    assert item["subject"]["name"] == "张晓丽" and item["subject"]["phone"].count("*") == 4
    assert item["item_name"] == "自主服务上报（每小时，需审核）" and item["actions"] == []
    seen = statements_and_commits
    assert sum("FROM policy_versions" in statement for statement in seen) == 1, seen  # the decision's, once
    last_write = max(i for i, text in enumerate(seen) if not text.lstrip().upper().startswith(("SELECT", "COMMIT")))
    after_commit = [text for text in seen[seen.index("COMMIT", last_write):] if text != "COMMIT"]
    assert len(after_commit) == 1 and "FROM members" in after_commit[0], after_commit  # the subject, for his name


def test_the_loser_of_two_decisions_gets_invalid_transition(client, world):
    record = submit(client, world)
    assert decide(client, world, f"record:{record['id']}", "secretary").status_code == 200
    again = decide(client, world, f"record:{record['id']}", "admin", "reject", {"reason": "晚了"})
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_transition"
    assert awards(record["id"]) == 2


def test_a_secretary_who_is_also_the_member_cannot_approve_his_own_record(client, world):
    world["users"]["alice"] = grant(world["users"]["alice"], Role.BRANCH_SECRETARY, world["fin1"].id)
    record = submit(client, world)
    response = decide(client, world, f"record:{record['id']}", "alice")
    assert response.status_code == 403 and awards(record["id"]) == 0
    assert call(client, "GET", "/approvals", world["users"]["alice"]).get_json()["data"]["total"] == 0


DECISIONS = [("approve", {}), ("reject", {"reason": "不符"}), ("request-info", {"comment": "请补充"})]


def envelope(response) -> tuple:
    return response.status_code, response.get_json()["code"], response.get_json()["message"]


@pytest.mark.parametrize("decision,payload", DECISIONS)
@pytest.mark.parametrize("who,item_code", [
    ("alice", "member.micro_wish"),  # his own record
    ("hr", "member.self_service_hour"),  # no approvals role
])
def test_every_decision_route_is_forbidden_on_ones_own_record_or_without_an_approvals_role(
        client, world, decision, payload, who, item_code):
    record = submit(client, world, item_code=item_code, **({} if item_code.endswith("_hour") else {"hours": None}))
    response = decide(client, world, f"record:{record['id']}", who, decision, payload)
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    db.session.expire_all()
    assert db.session.get(Record, record["id"]).status == RecordStatus.PENDING


@pytest.mark.parametrize("decision,payload", DECISIONS)
@pytest.mark.parametrize("who,item_code", [
    ("other_secretary", "member.self_service_hour"),  # another branch
    ("south_admin", "member.micro_wish"),  # another community
])
def test_a_record_outside_the_deciders_scope_answers_like_a_missing_one(client, world, decision, payload, who,
                                                                        item_code):
    record = submit(client, world, item_code=item_code, **({} if item_code.endswith("_hour") else {"hours": None}))
    hidden = decide(client, world, f"record:{record['id']}", who, decision, payload)
    missing = decide(client, world, "record:999999", who, decision, payload)
    assert envelope(hidden) == envelope(missing) == (404, "not_found", "审批事项不存在")
    db.session.expire_all()
    assert db.session.get(Record, record["id"]).status == RecordStatus.PENDING


@pytest.mark.parametrize("decision,payload", DECISIONS[:2])
@pytest.mark.parametrize("who", ["other_secretary", "south_admin"])
def test_a_proposal_outside_the_deciders_scope_answers_like_a_missing_one(client, world, decision, payload, who):
    proposal = make_proposal(world["north"], world["fin1"])  # fin1's secretary decides, then north's admin
    hidden = decide(client, world, f"activity:{proposal.id}", who, decision, payload)
    missing = decide(client, world, "activity:999999", who, decision, payload)
    assert envelope(hidden) == envelope(missing) == (404, "not_found", "审批事项不存在")
    db.session.expire_all()
    assert proposal.status == ActivityStatus.PROPOSED


def test_reject_needs_a_reason_and_request_info_a_comment(client, world):
    record = submit(client, world)
    for decision in ("reject", "request-info"):
        response = decide(client, world, f"record:{record['id']}", "secretary", decision, {})
        assert response.status_code == 422
    assert decide(client, world, "record:999999", "secretary").status_code == 404
    assert decide(client, world, "anything", "secretary").status_code == 404


def test_request_info_then_resubmit_then_approve(client, world):
    record = submit(client, world)
    approval_id = f"record:{record['id']}"
    asked = decide(client, world, approval_id, "secretary", "request-info", {"comment": "请补充服务对象签字"})
    assert asked.status_code == 200 and asked.get_json()["data"]["status"] == "needs_info"
    alice = world["users"]["alice"]
    mine = call(client, "GET", "/records?status=needs_info", alice).get_json()["data"]["items"]
    assert mine[0]["decision_comment"] == "请补充服务对象签字"
    assert call(client, "POST", f"/records/{record['id']}/resubmit", world["users"]["bob"], {}).status_code == 404
    resubmitted = call(client, "POST", f"/records/{record['id']}/resubmit", alice,
                       {"evidence": ["https://img.example.cn/signed.jpg"]})
    assert resubmitted.status_code == 200 and resubmitted.get_json()["data"]["status"] == "pending"
    assert call(client, "POST", f"/records/{record['id']}/resubmit", alice, {}).status_code == 409
    assert decide(client, world, approval_id, "secretary").status_code == 200
    assert awards(record["id"]) == 2


def test_a_resubmission_whose_answer_was_lost_is_replayed_under_its_idempotency_key(client, world):
    # the mini-program retries a resubmission lost to a weak network with the same key and body
    record = submit(client, world)
    decide(client, world, f"record:{record['id']}", "secretary", "request-info", {"comment": "请补充服务对象签字"})
    alice, key = world["users"]["alice"], {"Idempotency-Key": "resubmit-key-0001"}
    answer = {"description": "为独居老人代购药品，附签字", "evidence": ["https://img.example.cn/signed.jpg"]}
    first = call(client, "POST", f"/records/{record['id']}/resubmit", alice, answer, headers=key)
    assert first.status_code == 200 and first.get_json()["data"]["status"] == "pending"
    again = call(client, "POST", f"/records/{record['id']}/resubmit", alice, answer, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["data"] == first.get_json()["data"]
    other = call(client, "POST", f"/records/{record['id']}/resubmit", alice, {"description": "另一份说明"}, headers=key)
    assert (other.status_code, other.get_json()["code"]) == (422, "idempotency_key_reused")
    assert call(client, "POST", f"/records/{record['id']}/resubmit", alice, answer).status_code == 409


def test_each_request_for_more_information_tells_the_member_what_to_add(client, world):
    record = submit(client, world)
    alice = world["users"]["alice"]
    for n, comment in enumerate(("请补充服务对象签字", "签字照片不清晰，请重新拍摄"), start=1):
        if n > 1:
            assert call(client, "POST", f"/records/{record['id']}/resubmit", alice, {}).status_code == 200
        asked = decide(client, world, f"record:{record['id']}", "secretary", "request-info", {"comment": comment})
        assert asked.status_code == 200
        inbox = call(client, "GET", "/me/messages", alice).get_json()["data"]
        assert (inbox["total"], inbox["unread"]) == (n, n)
        newest = inbox["items"][0]
        assert (newest["event"], newest["title"]) == ("record_needs_info", "积分申请需补充材料")
        assert newest["body"] == f"自主服务上报（每小时，需审核）：需补充材料，说明：{comment}"
        assert newest["link"] == "/pages/report/report"


PAST_ROW_IDS = [f"record:{MAX_ROW_ID + 1}", f"activity:{MAX_ROW_ID + 1}", "record:999999999999999999"]


def reads_of_approval_items(statements: list[str]) -> list[str]:
    return [s for s in statements if re.search(r"\bFROM (records|activities)\b", s)]


@pytest.mark.parametrize("decision,payload", DECISIONS)
@pytest.mark.parametrize("approval_id", PAST_ROW_IDS)
def test_an_id_past_a_rows_range_answers_like_a_missing_one_without_reaching_the_database(
        client, world, statements, approval_id, decision, payload):
    statements.clear()
    response = decide(client, world, approval_id, "secretary", decision, payload)
    assert envelope(response) == (404, "not_found", "审批事项不存在")
    assert reads_of_approval_items(statements) == []  # PostgreSQL would refuse it: INTEGER out of range


def test_a_batch_naming_an_id_past_a_rows_range_reports_it_as_not_found(client, world, statements):
    ours = f"record:{submit(client, world)['id']}"
    statements.clear()
    response = call(client, "POST", "/approvals/batch", world["users"]["secretary"],
                    {"ids": [ours, *PAST_ROW_IDS], "decision": "approve"})
    assert response.status_code == 422 and response.get_json()["code"] == "validation_failed"
    assert response.get_json()["data"]["reasons"] == dict.fromkeys(PAST_ROW_IDS, "not_found")
    assert len(reads_of_approval_items(statements)) == 1  # ours only
    assert awards(int(ours.split(":")[1])) == 0


# ------------------------------------------------------------------------------------------------ batches

def test_a_batch_with_one_foreign_id_is_refused_whole_naming_that_id(client, world):
    ours = [submit(client, world) for _ in range(3)]
    foreign = submit(client, world, "bob")
    ids = [f"record:{r['id']}" for r in [*ours, foreign]]
    response = call(client, "POST", "/approvals/batch", world["users"]["secretary"],
                    {"ids": ids, "decision": "approve"})
    assert response.status_code == 422 and response.get_json()["code"] == "validation_failed"
    assert response.get_json()["data"]["errors"].keys() == {f"record:{foreign['id']}"}
    assert response.get_json()["data"]["reasons"] == {f"record:{foreign['id']}": "not_found"}  # as a missing id:
    missing = call(client, "POST", "/approvals/batch", world["users"]["secretary"],
                   {"ids": [*ids[:3], "record:999999"], "decision": "approve"})
    assert envelope(missing) == envelope(response)
    assert missing.get_json()["data"]["errors"]["record:999999"] == response.get_json()["data"]["errors"][ids[3]]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    queue = call(client, "GET", "/approvals", world["users"]["secretary"]).get_json()["data"]
    assert queue["total"] == 3


def test_a_batch_approves_records_and_proposals_together(client, world):
    records = [submit(client, world) for _ in range(2)]
    proposal = make_proposal(world["north"], world["fin1"])
    ids = [f"record:{r['id']}" for r in records] + [f"activity:{proposal.id}"]
    response = call(client, "POST", "/approvals/batch", world["users"]["secretary"],
                    {"ids": ids, "decision": "approve", "comment": "同意"})
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["count"] == 3 and [item["id"] for item in data["items"]] == ids
    assert all(awards(r["id"]) == 2 for r in records)
    assert call(client, "GET", "/approvals", world["users"]["secretary"]).get_json()["data"]["total"] == 0


MINE = "<the submitted record>"


@pytest.mark.parametrize("payload", [
    {"ids": [], "decision": "approve"},
    {"ids": [MINE, *(f"record:{n}" for n in range(1_000, 1_100))], "decision": "approve"},  # 101 ids
    {"ids": [MINE, MINE], "decision": "approve"},
    {"ids": [MINE], "decision": "request_info"},
    {"ids": [MINE], "decision": "reject"},  # no reason
    {"ids": [MINE], "decision": "approve", "approver_id": 1},
    {"ids": [MINE, "record:999999"], "decision": "approve"},
])
def test_bad_batches_are_refused_before_anything_changes(client, world, payload):
    record = submit(client, world)
    ids = [f"record:{record['id']}" if raw_id == MINE else raw_id for raw_id in payload["ids"]]
    response = call(client, "POST", "/approvals/batch", world["users"]["secretary"], {**payload, "ids": ids})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Record, record["id"]).status == RecordStatus.PENDING
