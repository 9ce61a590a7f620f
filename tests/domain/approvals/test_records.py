"""Self-reports and organization records: which items may be reported, validation, routing, resubmission."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import Principal
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals import records
from points_service.domain.approvals.decisions import Decision
from points_service.domain.approvals.records import MAX_EVIDENCE, MAX_RECORD_AGE
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from points_service.domain.ledger import reading
from points_service.domain.ledger.totals import total_of
from points_service.domain.lifecycle.guard import MemberInactive
from points_service.models import (
    ApprovalEvent,
    AuditEntry,
    LedgerEntry,
    LedgerName,
    Record,
    RecordStatus,
    Role,
    SubjectType,
)
from tests.factories import make_department, make_user, make_world
from tests.factories.records import NOW, as_user, org_record, self_report, submission


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["carol"] = make_user(member=world["carol"])
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    db.session.commit()
    return world


def field_errors(call) -> dict:
    with pytest.raises(ValidationFailed) as failure:
        call()
    return failure.value.data["errors"]


def test_a_self_reported_hour_waits_for_the_members_branch_secretary(world):
    record = self_report(world["users"]["alice"], hours="2.5")
    assert record.status == RecordStatus.PENDING and record.units == Decimal("2.5")
    assert (record.subject_type, record.subject_id) == (SubjectType.MEMBER, world["alice"].id)
    assert (record.route_role, record.route_scope_id) == (Role.BRANCH_SECRETARY, world["fin1"].id)
    event = db.session.scalar(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "record"))
    assert (event.target_id, event.from_status, event.to_status) == (record.id, "", "pending")
    assert event.actor_id == world["users"]["alice"].id


def test_a_micro_wish_waits_for_the_members_residence_community(world):
    record = self_report(world["users"]["bob"], "member.micro_wish")
    assert record.units == Decimal(1)
    assert (record.route_role, record.route_scope_id) == (Role.COMMUNITY_ADMIN, world["south"].id)


@pytest.mark.parametrize("item_code", [
    "member.activity_hour",  # auto: scored by verified check-in and check-out only
    "member.report",  # credited by the report workflow itself
    "member.falsified",  # a deduction
    "org.project_done",  # an organization's item
    "member.no_such_item",
])
def test_items_a_member_cannot_report_himself_are_refused_naming_the_item_code(world, item_code):
    errors = field_errors(lambda: self_report(world["users"]["alice"], item_code, hours=None))
    assert set(errors) == {"item_code"}


def test_an_auto_item_is_refused_with_a_message_naming_its_code(world):
    errors = field_errors(lambda: self_report(world["users"]["alice"], "member.activity_hour", hours=1))
    assert "member.activity_hour" in errors["item_code"][0]


@pytest.mark.parametrize("hours", [None, 0, "-1", "24.01"])
def test_hours_are_required_and_between_zero_and_a_day_for_hourly_items(world, hours):
    errors = field_errors(lambda: self_report(world["users"]["alice"], hours=hours))
    assert set(errors) == {"hours"}


def test_a_full_day_of_service_is_accepted(world):
    assert self_report(world["users"]["alice"], hours=24).units == Decimal(24)


def test_hours_are_refused_for_items_counted_in_times(world):
    errors = field_errors(lambda: self_report(world["users"]["alice"], "member.micro_wish", hours=1))
    assert set(errors) == {"hours"}


@pytest.mark.parametrize("occurred_at", [NOW + timedelta(seconds=1), NOW - MAX_RECORD_AGE - timedelta(seconds=1)])
def test_service_in_the_future_or_too_long_ago_is_refused(world, occurred_at):
    errors = field_errors(lambda: self_report(world["users"]["alice"], occurred_at=occurred_at))
    assert set(errors) == {"occurred_at"}


@pytest.mark.parametrize("occurred_at", [NOW, NOW - MAX_RECORD_AGE])
def test_service_right_now_or_exactly_at_the_age_limit_is_accepted(world, occurred_at):
    assert self_report(world["users"]["alice"], occurred_at=occurred_at).occurred_at == occurred_at


def test_more_evidence_than_the_limit_is_refused(world):
    evidence = tuple(f"https://img.example.cn/{n}.jpg" for n in range(MAX_EVIDENCE + 1))
    assert set(field_errors(lambda: self_report(world["users"]["alice"], evidence=evidence))) == {"evidence"}


def test_a_console_user_who_is_not_a_member_cannot_self_report(world):
    with pytest.raises(Forbidden):
        records.submit_member_record(as_user(world["users"]["secretary"]), submission(), now=NOW)


def test_a_principal_that_names_no_branch_or_community_cannot_self_report(world):
    bare = Principal(user_id=world["users"]["alice"].id, member_id=world["alice"].id)  # not loaded with his places
    with pytest.raises(Forbidden):
        records.submit_member_record(bare, submission(), now=NOW)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 0


def test_a_submitted_record_carries_its_item_name_until_it_is_read_afresh(world):
    record = self_report(world["users"]["alice"])
    assert record.item_name == "自主服务上报（每小时，需审核）"  # the answer needs no policy read
    assert db.session.get(Record, record.id, populate_existing=True) is record and record.item_name is None


def test_a_pending_record_leaves_the_members_totals_unchanged(world):
    alice = world["alice"]
    before = reading.member_points(as_user(world["users"]["alice"]), alice.id, None)
    self_report(world["users"]["alice"], "member.micro_wish")
    after = reading.member_points(as_user(world["users"]["alice"]), alice.id, None)
    assert after == before
    assert total_of(SubjectType.MEMBER, alice.id, LedgerName.ASSESSMENT, "2026-11").earned == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0


def records_of(user) -> list[Record]:
    return list(db.session.scalars(sa.select(Record).where(Record.submitted_by_id == user.id)))


def test_a_submission_retried_with_its_request_key_is_the_record_it_wrote(world):
    alice = world["users"]["alice"]
    first = self_report(alice, request_key="retry-key-0001")
    db.session.expire_all()
    again = self_report(alice, request_key="retry-key-0001", hours=3)  # the retry's body is not looked at again
    assert again.id == first.id and again.units == Decimal(2) and again.status == RecordStatus.PENDING
    assert [r.id for r in records_of(alice)] == [first.id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent)) == 1  # no second event


def test_a_retried_submission_answers_the_record_as_it_is_now(world):
    alice = world["users"]["alice"]
    first = self_report(alice, request_key="retry-key-0002")
    approvals.decide(as_user(world["users"]["secretary"]), f"record:{first.id}", Decision.APPROVE, "", now=NOW)
    assert self_report(alice, request_key="retry-key-0002").status == RecordStatus.APPROVED


def test_other_request_keys_or_none_write_other_records(world):
    alice = world["users"]["alice"]
    ids = {self_report(alice, request_key=key).id for key in ("retry-key-000a", "retry-key-000b", None, None)}
    assert len(ids) == 4 and len(records_of(alice)) == 4


def test_a_request_key_is_the_submitters_own(world):
    """Two accounts may send the same key: each is his own submission."""
    first = self_report(world["users"]["alice"], request_key="shared-key-0001")
    second = self_report(world["users"]["bob"], request_key="shared-key-0001")
    assert first.id != second.id and second.subject_id == world["bob"].id


def test_a_deactivated_member_retrying_gets_his_record_back_but_a_new_key_is_refused(world):
    alice = world["users"]["alice"]
    first = self_report(alice, request_key="retry-key-0003")
    world["alice"].is_active = False
    db.session.commit()
    assert self_report(alice, request_key="retry-key-0003").id == first.id
    with pytest.raises(MemberInactive):
        self_report(alice, request_key="retry-key-0004")
    assert [r.id for r in records_of(alice)] == [first.id]


def test_an_organization_record_retried_with_its_request_key_is_written_once(world):
    admin = world["users"]["org_admin"]
    first = org_record(admin, world["finance"], request_key="org-retry-0001")
    assert org_record(admin, world["finance"], request_key="org-retry-0001").id == first.id
    assert len(records_of(admin)) == 1


# ---------------------------------------------------------------------------------------- organizations

def test_an_org_admin_reports_a_project_which_waits_for_the_paired_community(world):
    record = org_record(world["users"]["org_admin"], world["finance"])
    assert (record.subject_type, record.subject_id) == (SubjectType.ORGANIZATION, world["finance"].id)
    assert (record.route_role, record.route_scope_id) == (Role.COMMUNITY_ADMIN, world["north"].id)
    assert record.units == Decimal(1) and record.status == RecordStatus.PENDING


def test_someone_who_does_not_manage_the_organization_cannot_report_for_it(world):
    for name in ("hr", "alice", "community_admin"):
        with pytest.raises(Forbidden):
            org_record(world["users"][name], world["finance"])


def test_a_branch_cannot_report_organization_items(world):
    assert set(field_errors(lambda: org_record(world["users"]["secretary"], world["fin1"]))) == {"organization_id"}


def test_an_organization_without_a_paired_community_has_no_one_to_confirm_its_record(world):
    loner = make_department(None)
    db.session.commit()
    assert set(field_errors(lambda: org_record(world["users"]["admin"], loner))) == {"organization_id"}


@pytest.mark.parametrize("item_code", ["member.micro_wish", "org.report", "org.meeting_absence"])
def test_an_organization_reports_only_its_own_award_items(world, item_code):
    errors = field_errors(lambda: org_record(world["users"]["org_admin"], world["finance"], item_code))
    assert set(errors) == {"item_code"}


def test_an_organization_record_for_a_missing_organization_is_not_found(world):
    with pytest.raises(NotFound):
        records.submit_organization_record(as_user(world["users"]["admin"]), 99999, submission(hours=None), now=NOW)


# -------------------------------------------------------------------------------------- resubmitting

def asked_for_more(world, record, decider: str = "secretary"):
    approvals.decide(as_user(world["users"][decider]), f"record:{record.id}", Decision.REQUEST_INFO,
                     "请补充服务对象签字照片", now=NOW)
    return record


def test_a_member_answers_a_request_for_information_with_new_text_and_evidence(world):
    record = asked_for_more(world, self_report(world["users"]["alice"]))
    assert record.status == RecordStatus.NEEDS_INFO and record.decision_comment == "请补充服务对象签字照片"
    records.resubmit_record(as_user(world["users"]["alice"]), record.id, description="附签字照片",
                            evidence=["https://img.example.cn/sign.jpg"], now=NOW)
    db.session.expire_all()
    assert record.status == RecordStatus.PENDING and record.description == "附签字照片"
    assert record.evidence == ["https://img.example.cn/sign.jpg"]
    moves = db.session.execute(sa.select(ApprovalEvent.from_status, ApprovalEvent.to_status)
                               .order_by(ApprovalEvent.id)).all()
    assert moves == [("", "pending"), ("pending", "needs_info"), ("needs_info", "pending")]


def test_a_resubmission_without_changes_keeps_the_text_and_evidence(world):
    record = asked_for_more(world, self_report(world["users"]["alice"]))
    records.resubmit_record(as_user(world["users"]["alice"]), record.id, now=NOW)
    db.session.expire_all()
    assert record.status == RecordStatus.PENDING and record.description == "为独居老人代购药品"


def resubmission_audits() -> list[tuple]:
    return db.session.execute(sa.select(AuditEntry.actor_id, AuditEntry.target_id, AuditEntry.detail)
                              .where(AuditEntry.action == "record.resubmit").order_by(AuditEntry.id)).all()


def test_a_resubmission_writes_an_audit_row_saying_what_changed(world):
    alice = world["users"]["alice"]
    changed, unchanged = (asked_for_more(world, self_report(alice)) for _ in range(2))
    records.resubmit_record(as_user(alice), changed.id, description="附签字照片",
                            evidence=["https://img.example.cn/a.jpg", "https://img.example.cn/b.jpg"], now=NOW)
    records.resubmit_record(as_user(alice), unchanged.id, description=" 为独居老人代购药品 ", now=NOW)
    assert resubmission_audits() == [
        (alice.id, str(changed.id), {"description_changed": True, "evidence_count": 2}),
        (alice.id, str(unchanged.id), {"description_changed": False, "evidence_count": len(unchanged.evidence)}),
    ]


def test_a_pending_record_cannot_be_resubmitted(world):
    record = self_report(world["users"]["alice"])
    with pytest.raises(InvalidTransition):
        records.resubmit_record(as_user(world["users"]["alice"]), record.id, now=NOW)
    assert resubmission_audits() == []


def test_only_the_member_himself_resubmits_his_record(world):
    record = asked_for_more(world, self_report(world["users"]["alice"]))
    for name in ("bob", "secretary"):
        with pytest.raises(NotFound):  # someone else's record answers like a missing one
            records.resubmit_record(as_user(world["users"][name]), record.id, now=NOW)


def test_an_organization_record_is_resubmitted_by_a_manager_of_the_organization(world):
    record = org_record(world["users"]["org_admin"], world["finance"])
    approvals.decide(as_user(world["users"]["community_admin"]), f"record:{record.id}", Decision.REQUEST_INFO,
                     "请附项目验收材料", now=NOW)
    with pytest.raises(NotFound):
        records.resubmit_record(as_user(world["users"]["alice"]), record.id, now=NOW)
    records.resubmit_record(as_user(world["users"]["admin"]), record.id, now=NOW)
    assert record.status == RecordStatus.PENDING


# ------------------------------------------------------------------------------------------- reading

def test_a_member_lists_only_his_own_records_filtered_by_status(world):
    mine = self_report(world["users"]["alice"])
    self_report(world["users"]["bob"])
    asked = asked_for_more(world, self_report(world["users"]["alice"], "member.micro_wish"), "community_admin")
    listed = db.session.scalars(records.own_records(as_user(world["users"]["alice"]))).all()
    assert [r.id for r in listed] == [asked.id, mine.id]
    needs_info = records.own_records(as_user(world["users"]["alice"]), RecordStatus.NEEDS_INFO)
    assert [r.id for r in db.session.scalars(needs_info)] == [asked.id]


def test_an_org_admin_lists_the_organization_records_he_submitted(world):
    record = org_record(world["users"]["org_admin"], world["finance"])
    listed = db.session.scalars(records.own_records(as_user(world["users"]["org_admin"]))).all()
    assert [r.id for r in listed] == [record.id]
