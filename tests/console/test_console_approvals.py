"""The approvals pages: the scoped queue with its filters and pending badge, decisions one at a time (also
as htmx partials), rejection with a reason, batches, a 404 page outside the user's scope (like a missing id) and a
403 page for a record one submitted oneself."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.ledger.totals import total_of
from points_service.models import ALL_TIME, ActivityStatus, LedgerName, Record, RecordStatus, SubjectType
from tests.console.helpers import post, sign_in, text
from tests.factories.activities import make_activity
from tests.factories.records import org_record, self_report


def status_of(record: Record) -> RecordStatus:
    db.session.expire_all()
    return db.session.get(Record, record.id).status


def test_the_secretary_sees_only_records_routed_to_his_branch_with_the_pending_count(client, world):
    mine = self_report(world["users"]["alice"], description="为独居老人代购药品")
    self_report(world["users"]["bob"], description="帮助邻居修水管")  # fin2: another branch
    sign_in(client, "secretary")
    page = text(client.get("/console/approvals"))
    assert f'data-approval-id="record:{mine.id}"' in page
    assert "帮助邻居修水管" not in page
    assert 'id="badge-approvals" data-count="1"' in page
    assert "https://img.example.cn/wish/1.jpg" in page  # evidence linked


def test_filters_by_item_and_date_narrow_the_queue(client, world):
    self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    assert "record:" in text(client.get("/console/approvals?item_code=member.self_service_hour"))
    assert "没有符合条件的事项" in text(client.get("/console/approvals?item_code=member.wish_realized"))
    assert "没有符合条件的事项" in text(client.get("/console/approvals?from=2099-01-01"))



def test_a_date_filter_outside_the_services_years_is_ignored_instead_of_a_500(client, world):
    self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    for query in ("to=9999-12-31", "from=0001-01-01", "from=1066-10-14&to=9999-12-31"):
        response = client.get(f"/console/approvals?{query}")
        assert response.status_code == 200, query
        assert "record:" in text(response)  # the filter falls back to none, like any other unknown value

def test_approving_credits_the_member_and_the_member_page_shows_the_points(client, world):
    record = self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    response = post(client, f"/console/approvals/record:{record.id}/approve", {"comment": "属实"})
    assert response.status_code == 302
    assert status_of(record) == RecordStatus.APPROVED
    earned = total_of(SubjectType.MEMBER, world["alice"].id, LedgerName.ASSESSMENT, ALL_TIME).net
    assert earned > Decimal(0)
    member_page = text(client.get(f"/console/members/{world['alice'].id}"))
    assert f'<p class="big" id="assessment-net">{earned.normalize():f}</p>' in member_page


def test_an_htmx_decision_returns_the_decided_row_and_the_new_badge(client, world):
    record = self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    response = post(client, f"/console/approvals/record:{record.id}/approve", htmx=True)
    html = text(response)
    assert response.status_code == 200
    assert "已通过" in html and 'data-action="approve"' not in html
    assert 'id="badge-approvals" hx-swap-oob="true" data-count="0"' in html


def test_rejecting_needs_a_reason_and_keeps_it(client, world):
    record = self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    refused = post(client, f"/console/approvals/record:{record.id}/reject", {"reason": ""}, htmx=True)
    assert "请填写驳回理由" in text(refused)
    assert status_of(record) == RecordStatus.PENDING
    post(client, f"/console/approvals/record:{record.id}/reject", {"reason": "证明材料与时间不符"})
    assert status_of(record) == RecordStatus.REJECTED
    assert db.session.get(Record, record.id).decision_comment == "证明材料与时间不符"


def test_a_back_field_with_a_control_character_or_a_backslash_returns_to_the_forms_own_page(client, world):
    first, second = self_report(world["users"]["alice"]), self_report(world["users"]["alice"], description="第二次")
    sign_in(client, "secretary")
    decided = post(client, f"/console/approvals/record:{first.id}/approve", {"back": "/console/\r\nX: y"})
    assert decided.headers["Location"] == f"/console/approvals/record:{first.id}"
    batch = post(client, "/console/approvals/batch", {"ids": [f"record:{second.id}"], "decision": "approve",
                                                     "back": "/console/\\\\evil.example"})
    assert batch.headers["Location"] == "/console/approvals"
    assert status_of(first) == status_of(second) == RecordStatus.APPROVED


def test_a_batch_is_all_or_nothing_and_reports_why(client, world):
    first = self_report(world["users"]["alice"])
    second = self_report(world["users"]["alice"], description="第二次服务")
    foreign = self_report(world["users"]["bob"])
    sign_in(client, "secretary")
    post(client, "/console/approvals/batch", {"ids": [f"record:{first.id}", f"record:{foreign.id}"],
                                             "decision": "approve"})
    assert status_of(first) == RecordStatus.PENDING  # bob's record is not his: nothing happened
    assert "不存在的事项" in text(client.get("/console/approvals"))  # another branch's record: as a missing one
    post(client, "/console/approvals/batch", {"ids": [f"record:{first.id}", f"record:{second.id}"],
                                             "decision": "approve"})
    assert status_of(first) == status_of(second) == RecordStatus.APPROVED


def test_a_record_outside_the_users_scope_is_a_404_page_like_a_missing_one_and_cannot_be_decided(client, world):
    foreign = self_report(world["users"]["bob"])
    sign_in(client, "secretary")
    detail = client.get(f"/console/approvals/record:{foreign.id}")
    missing = client.get("/console/approvals/record:999999")
    assert detail.status_code == missing.status_code == 404 and "审批事项不存在" in text(detail)
    refused = post(client, f"/console/approvals/record:{foreign.id}/approve", htmx=True)
    assert "审批事项不存在" in text(refused) and "张晓丽" not in text(refused) and "李·建国" not in text(refused)
    assert status_of(foreign) == RecordStatus.PENDING
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 1


def test_a_record_one_submitted_oneself_is_a_403_page(client, world):
    record = org_record(world["users"]["org_admin"], world["finance"])  # routed to the paired community's admin
    sign_in(client, "finance_org_admin")
    detail = client.get(f"/console/approvals/record:{record.id}")
    assert detail.status_code == 403 and "无权" in text(detail)


def test_the_detail_page_shows_the_member_the_evidence_and_the_history(client, world):
    record = self_report(world["users"]["alice"])
    sign_in(client, "secretary")
    page = text(client.get(f"/console/approvals/record:{record.id}"))
    assert "张晓丽" in page and 'class="evidence"' in page and "为独居老人代购药品" in page


def test_a_user_without_an_approvals_role_gets_a_403_page(client, world):
    sign_in(client, "finance_hr")
    response = client.get("/console/approvals")
    assert response.status_code == 403
    assert "审批" not in text(client.get("/console/")).split("<main")[0]  # not in the menu either


def test_a_proposal_whose_start_has_come_offers_only_rejection_and_says_why(client, world):
    started = make_activity(world["north"], utcnow() - timedelta(minutes=10), status=ActivityStatus.PROPOSED,
                            proposed_by=world["fin1"])
    ahead = make_activity(world["north"], utcnow() + timedelta(days=2), status=ActivityStatus.PROPOSED,
                          proposed_by=world["fin1"])
    db.session.commit()
    sign_in(client, "secretary")
    page = text(client.get("/console/approvals"))
    started_row = page.split(f'data-approval-id="activity:{started.id}"')[1].split("</tr>")[0]
    ahead_row = page.split(f'data-approval-id="activity:{ahead.id}"')[1].split("</tr>")[0]
    assert 'data-action="approve"' in ahead_row and "活动已开始" not in ahead_row
    assert 'data-action="approve"' not in started_row and 'data-action="reject"' in started_row
    assert "活动已开始，不能再批准，请驳回" in started_row
    detail = text(client.get(f"/console/approvals/activity:{started.id}"))
    assert 'data-action="approve"' not in detail and 'data-action="reject"' in detail
    assert "活动已开始，不能再批准，请驳回" in detail
