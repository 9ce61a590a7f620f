"""Deciding records and proposed activities: scope, no self-approval, compare-and-set, crediting (I6),
all-or-nothing batches, and the scoped queue."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals import records
from points_service.domain.approvals.decisions import Decision, move_record
from points_service.domain.approvals.queue import QueueFilter, approval_queue
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound, ServiceError, ValidationFailed
from points_service.domain.policy import policy_in_force
from points_service.models import (
    ActivityStatus,
    ApprovalEvent,
    AuditEntry,
    LedgerEntry,
    Record,
    RecordStatus,
    Role,
    SourceType,
)
from points_service.models.service import ProposalStep
from tests.factories import make_user, make_world
from tests.factories.activities import make_activity
from tests.factories.records import NOW, as_user, grant, make_proposal, org_record, self_report


@pytest.fixture
def world(app):
    world = make_world()
    users = world["users"]
    users["carol"] = make_user(member=world["carol"])
    users["other_secretary"] = make_user((Role.BRANCH_SECRETARY, world["fin2"].id), username="fin2_secretary")
    users["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    users["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    db.session.commit()
    return world


def decide(world, who: str, target, decision: Decision = Decision.APPROVE, comment: str = "好"):
    return approvals.decide(as_user(world["users"][who]), approvals.approval_id(target), decision, comment, now=NOW)


def awards_of(record: Record) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.source_type == SourceType.RECORD, LedgerEntry.source_id == str(record.id))))


# ---------------------------------------------------------------------------------------------- records

def test_approving_a_record_credits_its_points_with_an_event_and_an_audit_row(world):
    record = self_report(world["users"]["alice"], hours=3)
    decide(world, "secretary", record, comment="属实")
    assert record.status == RecordStatus.APPROVED and record.decided_by_id == world["users"]["secretary"].id
    assert record.decided_at == NOW and record.decision_comment == "属实"
    entries = awards_of(record)
    assert sorted(e.ledger for e in entries) == ["assessment", "redeemable"]
    assert all(e.points == 3 and e.occurred_at == record.occurred_at and e.credited_at == NOW for e in entries)
    event = db.session.scalar(sa.select(ApprovalEvent).where(ApprovalEvent.to_status == "approved"))
    assert (event.target_type, event.target_id, event.from_status, event.comment) == (
        "record", record.id, "pending", "属实")
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "record.approve"))
    assert audit.target_id == str(record.id) and audit.actor_id == world["users"]["secretary"].id


def test_deciding_a_record_reads_the_approvers_scope_once(world, statements):
    record_id, secretary = self_report(world["users"]["alice"], hours=3).id, as_user(world["users"]["secretary"])
    db.session.expunge_all()  # the branch is not held by anything: each lookup of it would read it again
    statements.clear()
    approvals.decide(secretary, f"record:{record_id}", Decision.APPROVE, "属实", now=NOW)
    assert len([s for s in statements if s.lstrip().startswith("SELECT organizations.id AS organizations_id")]) == 1


def test_rejecting_a_record_needs_a_reason_and_credits_nothing(world):
    record = self_report(world["users"]["alice"])
    with pytest.raises(ValidationFailed) as failure:
        decide(world, "secretary", record, Decision.REJECT, comment="  ")
    assert set(failure.value.data["errors"]) == {"reason"}
    decide(world, "secretary", record, Decision.REJECT, comment="时长与照片不符")
    assert record.status == RecordStatus.REJECTED and record.decision_comment == "时长与照片不符"
    assert awards_of(record) == []
    assert db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.action.like("record.%"))) == "record.reject"


def test_a_request_for_information_then_a_resubmission_then_an_approval_credits_once(world):
    record = self_report(world["users"]["alice"], "member.micro_wish")
    decide(world, "community_admin", record, Decision.REQUEST_INFO, comment="请补充照片")
    assert record.status == RecordStatus.NEEDS_INFO and awards_of(record) == []
    with pytest.raises(InvalidTransition):
        decide(world, "community_admin", record)
    records.resubmit_record(as_user(world["users"]["alice"]), record.id, evidence=["https://x.example.cn/a.jpg"],
                            now=NOW)
    decide(world, "community_admin", record)
    assert record.status == RecordStatus.APPROVED and len(awards_of(record)) == 2
    actions = db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert [a for a in actions if a.startswith("record.")] == [
        "record.request_info", "record.resubmit", "record.approve"]


def test_a_decided_record_cannot_be_decided_again(world):
    record = self_report(world["users"]["alice"])
    decide(world, "secretary", record)
    for decision in Decision:
        with pytest.raises(InvalidTransition):
            decide(world, "admin", record, decision)
    assert len(awards_of(record)) == 2


def test_a_decider_who_read_a_stale_status_loses_the_compare_and_set(world):
    record = self_report(world["users"]["alice"])
    # Another decider rejects it behind this session's back: the in-memory record still says pending.
    db.session.execute(sa.update(Record).where(Record.id == record.id).values(status=RecordStatus.REJECTED)
                       .execution_options(synchronize_session=False))
    assert record.status == RecordStatus.PENDING
    with pytest.raises(InvalidTransition):
        move_record(record, RecordStatus.APPROVED, as_user(world["users"]["secretary"]), now=NOW)


def test_a_secretary_who_is_also_the_member_cannot_approve_his_own_record(world):
    world["users"]["alice_secretary"] = grant(world["users"]["alice"], Role.BRANCH_SECRETARY, world["fin1"].id)
    record = self_report(world["users"]["alice"])
    with pytest.raises(Forbidden):
        decide(world, "alice_secretary", record)
    assert record.status == RecordStatus.PENDING and awards_of(record) == []


@pytest.mark.parametrize("who,item_code", [
    ("other_secretary", "member.self_service_hour"),  # another branch's secretary
    ("community_admin", "member.self_service_hour"),  # routed to the branch, not the community
    ("south_admin", "member.micro_wish"),  # another community's admin
    ("secretary", "member.micro_wish"),  # routed to the community, not the branch
    ("hr", "member.self_service_hour"),
    ("bob", "member.self_service_hour"),
])
def test_only_the_routed_approver_within_scope_decides_and_for_others_the_record_does_not_exist(world, who, item_code):
    record = self_report(world["users"]["alice"], item_code)
    for decision in Decision:
        with pytest.raises(NotFound):
            decide(world, who, record, decision)
    assert record.status == RecordStatus.PENDING


def test_an_admin_decides_any_record_but_not_an_organization_record_he_submitted(world):
    mine = org_record(world["users"]["admin"], world["finance"])
    theirs = self_report(world["users"]["bob"])
    decide(world, "admin", theirs)
    with pytest.raises(Forbidden):
        decide(world, "admin", mine)
    decide(world, "community_admin", mine)
    assert mine.status == RecordStatus.APPROVED and awards_of(mine)[0].subject_id == world["finance"].id


def test_unknown_or_malformed_ids_are_not_found(world):
    published = make_activity(world["north"])
    db.session.commit()
    for raw_id in ("record:999", "activity:999", "record:abc", "12", "record:0", f"activity:{published.id}"):
        with pytest.raises(NotFound):
            approvals.decide(as_user(world["users"]["admin"]), raw_id, Decision.APPROVE, now=NOW)


def test_approved_records_and_their_awards_match_both_ways_over_random_decisions(world):
    """I6 over many decisions, batches and resubmissions in a random (seeded) order."""
    rng = random.Random(20261110)
    users = world["users"]
    submitters = [("alice", "member.self_service_hour"), ("alice", "member.micro_wish"),
                  ("bob", "member.grid_problem"), ("carol", "member.pairing_visit")]
    deciders = {"member.self_service_hour": ["secretary", "admin"], "member.micro_wish": ["community_admin", "admin"],
                "member.grid_problem": ["south_admin", "admin"], "member.pairing_visit": ["community_admin"]}
    made = [self_report(users[who], code) for who, code in (rng.choice(submitters) for _ in range(40))]
    for _ in range(80):
        record = rng.choice(made)
        who = rng.choice(deciders[record.item_code] + ["other_secretary"])
        decision = rng.choice(list(Decision))
        try:
            if record.status == RecordStatus.NEEDS_INFO and rng.random() < 0.5:
                owner = next(name for name in ("alice", "bob", "carol") if world[name].id == record.subject_id)
                records.resubmit_record(as_user(users[owner]), record.id, now=NOW)
            elif rng.random() < 0.2:
                batch = rng.sample(made, 3)
                approvals.decide_batch(as_user(users["admin"]), [approvals.approval_id(r) for r in batch],
                                       rng.choice([Decision.APPROVE, Decision.REJECT]), "批量", now=NOW)
            else:
                decide(world, who, record, decision)
        except ServiceError:
            pass
    db.session.expire_all()
    approved = {str(r.id) for r in db.session.scalars(sa.select(Record).where(Record.status == RecordStatus.APPROVED))}
    awarded = set(db.session.scalars(sa.select(LedgerEntry.source_id)
                                     .where(LedgerEntry.source_type == SourceType.RECORD)))
    assert approved and approved == awarded
    policy = policy_in_force(NOW)
    for record in db.session.scalars(sa.select(Record).where(Record.status == RecordStatus.APPROVED)):
        assert {e.ledger for e in awards_of(record)} == set(policy.item(record.item_code).ledgers)


# ------------------------------------------------------------------------------------------------ batches

def test_a_batch_with_one_foreign_id_changes_nothing_and_names_the_foreign_id(world):
    ours = [self_report(world["users"]["alice"]) for _ in range(3)]
    foreign = self_report(world["users"]["bob"])  # fin2: not the fin1 secretary's
    ids = [approvals.approval_id(r) for r in [*ours, foreign]]
    with pytest.raises(ServiceError) as failure:
        approvals.decide_batch(as_user(world["users"]["secretary"]), ids, Decision.APPROVE, now=NOW)
    assert (failure.value.status, failure.value.code) == (422, "validation_failed")  # as for an unknown id
    assert set(failure.value.data["errors"]) == {f"record:{foreign.id}"}
    assert failure.value.data["reasons"] == {f"record:{foreign.id}": "not_found"}
    db.session.expire_all()
    assert {r.status for r in [*ours, foreign]} == {RecordStatus.PENDING}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0


def test_a_batch_with_an_already_decided_record_is_a_conflict_and_changes_nothing(world):
    first, second = self_report(world["users"]["alice"]), self_report(world["users"]["alice"])
    decide(world, "secretary", second, Decision.REJECT, comment="重复")
    with pytest.raises(InvalidTransition) as failure:
        approvals.decide_batch(as_user(world["users"]["secretary"]), [f"record:{first.id}", f"record:{second.id}"],
                               Decision.APPROVE, now=NOW)
    assert failure.value.data["reasons"] == {f"record:{second.id}": "invalid_transition"}
    assert first.status == RecordStatus.PENDING and awards_of(first) == []


def test_a_batch_naming_a_missing_id_is_refused_as_bad_input(world):
    record = self_report(world["users"]["alice"])
    with pytest.raises(ServiceError) as failure:
        approvals.decide_batch(as_user(world["users"]["secretary"]), [f"record:{record.id}", "record:999"],
                               Decision.APPROVE, now=NOW)
    assert failure.value.status == 422 and set(failure.value.data["errors"]) == {"record:999"}


@pytest.mark.parametrize("ids", [[], ["record:1", "record:1"], [f"record:{n}" for n in range(1, 102)]])
def test_a_batch_is_one_to_a_hundred_distinct_ids(world, ids):
    with pytest.raises(ValidationFailed) as failure:
        approvals.decide_batch(as_user(world["users"]["admin"]), ids, Decision.APPROVE, now=NOW)
    assert set(failure.value.data["errors"]) == {"ids"}


def test_a_batch_approval_decides_and_credits_every_record_at_once(world):
    made = [self_report(world["users"]["alice"], "member.micro_wish"), self_report(world["users"]["carol"],
            "member.pairing_visit"), org_record(world["users"]["org_admin"], world["finance"])]
    decided = approvals.decide_batch(as_user(world["users"]["community_admin"]),
                                     [approvals.approval_id(r) for r in made], Decision.APPROVE, now=NOW)
    assert decided == made and {r.status for r in made} == {RecordStatus.APPROVED}
    assert all(awards_of(r) for r in made)
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "record.approve")) == 3


def test_a_batch_rejection_needs_a_reason(world):
    record = self_report(world["users"]["alice"])
    with pytest.raises(ValidationFailed) as failure:
        approvals.decide_batch(as_user(world["users"]["secretary"]), [f"record:{record.id}"], Decision.REJECT,
                               now=NOW)
    assert set(failure.value.data["errors"]) == {"reason"} and record.status == RecordStatus.PENDING


# ---------------------------------------------------------------------------------------------- proposals

def test_a_proposal_is_approved_by_its_organization_and_then_published_by_the_host_community(world):
    proposal = make_proposal(world["north"], world["fin1"], created_by=world["users"]["org_admin"])
    decide(world, "secretary", proposal)
    assert (proposal.status, proposal.approval_step) == (ActivityStatus.PROPOSED, ProposalStep.COMMUNITY)
    decide(world, "community_admin", proposal, comment="同意承办")
    assert proposal.status == ActivityStatus.PUBLISHED
    moves = db.session.execute(sa.select(ApprovalEvent.from_status, ApprovalEvent.to_status, ApprovalEvent.actor_id)
                               .where(ApprovalEvent.target_type == "activity").order_by(ApprovalEvent.id)).all()
    users = world["users"]
    assert moves == [("proposed", "org_approved", users["secretary"].id),
                     ("org_approved", "published", users["community_admin"].id)]
    audits = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_type == "activities")).all()
    assert audits == ["activity.approve", "activity.approve"]


def test_each_step_of_a_proposal_belongs_to_its_own_approver(world):
    proposal = make_proposal(world["north"], world["fin1"])
    with pytest.raises(Forbidden):
        decide(world, "community_admin", proposal)  # the host community sees it, but decides the second step
    for who in ("other_secretary", "hr", "alice"):  # for them the proposal does not exist
        with pytest.raises(NotFound):
            decide(world, who, proposal)
    decide(world, "org_admin", proposal)  # the department's org admin manages its branches too
    for who in ("secretary", "org_admin"):
        with pytest.raises(Forbidden):
            decide(world, who, proposal)
    with pytest.raises(NotFound):
        decide(world, "south_admin", proposal)
    assert proposal.approval_step == ProposalStep.COMMUNITY and proposal.status == ActivityStatus.PROPOSED


def test_nobody_approves_a_proposal_he_made_himself(world):
    proposal = make_proposal(world["north"], world["fin1"], created_by=world["users"]["secretary"])
    with pytest.raises(Forbidden):
        decide(world, "secretary", proposal)
    decide(world, "org_admin", proposal)
    assert proposal.approval_step == ProposalStep.COMMUNITY


@pytest.mark.parametrize("approvals_first", [0, 1])
def test_a_proposal_can_be_rejected_at_either_step_and_then_nothing_more(world, approvals_first):
    proposal = make_proposal(world["north"], world["fin1"])
    if approvals_first:
        decide(world, "secretary", proposal)
    decider = "community_admin" if approvals_first else "secretary"
    decide(world, decider, proposal, Decision.REJECT, comment="时间冲突")
    assert proposal.status == ActivityStatus.REJECTED
    for who in (decider, "admin"):
        with pytest.raises(InvalidTransition):
            decide(world, who, proposal)
    with pytest.raises(NotFound):
        decide(world, "south_admin", proposal)


def test_a_proposal_cannot_be_sent_back_for_more_information(world):
    proposal = make_proposal(world["north"], world["fin1"])
    with pytest.raises(InvalidTransition):
        decide(world, "secretary", proposal, Decision.REQUEST_INFO, comment="?")
    assert proposal.status == ActivityStatus.PROPOSED


# -------------------------------------------------------------------------------------------------- queue

def queue_ids(world, who: str, **filters) -> list[str]:
    page = approval_queue(as_user(world["users"][who]), QueueFilter(**filters), page_size=100)
    assert page["total"] == len(page["items"])
    return [item.id for item in page["items"]]


def test_each_approver_sees_exactly_what_is_routed_to_him(world):
    hour = self_report(world["users"]["alice"])  # fin1 secretary
    wish = self_report(world["users"]["alice"], "member.micro_wish")  # north
    bobs = self_report(world["users"]["bob"])  # fin2 secretary
    carols = self_report(world["users"]["carol"], "member.pairing_visit")  # north
    org = org_record(world["users"]["org_admin"], world["finance"])  # north (paired)
    proposal = make_proposal(world["north"], world["fin1"])
    assert queue_ids(world, "secretary") == [f"record:{hour.id}", f"activity:{proposal.id}"]
    assert queue_ids(world, "other_secretary") == [f"record:{bobs.id}"]
    assert queue_ids(world, "community_admin") == [f"record:{r.id}" for r in (wish, carols, org)]
    assert queue_ids(world, "south_admin") == []
    assert queue_ids(world, "org_admin") == [f"activity:{proposal.id}"]  # his own org record is not his
    assert len(queue_ids(world, "admin")) == 6


def test_a_secretary_who_is_also_a_member_never_sees_his_own_record(world):
    world["users"]["alice_secretary"] = grant(world["users"]["alice"], Role.BRANCH_SECRETARY, world["fin1"].id)
    self_report(world["users"]["alice"])
    assert queue_ids(world, "alice_secretary") == [] and len(queue_ids(world, "secretary")) == 1


def test_a_proposal_moves_from_the_organizations_queue_to_the_communitys(world):
    proposal = make_proposal(world["north"], world["fin1"])
    assert queue_ids(world, "community_admin") == []
    decide(world, "secretary", proposal)
    assert queue_ids(world, "secretary") == [] and queue_ids(world, "community_admin") == [f"activity:{proposal.id}"]
    decide(world, "community_admin", proposal)
    assert queue_ids(world, "community_admin") == []


def test_queue_items_describe_the_subject_with_a_masked_phone_and_the_possible_actions(world):
    record = self_report(world["users"]["alice"], hours="1.5")
    item = approval_queue(as_user(world["users"]["secretary"]), QueueFilter())["items"][0]
    assert (item.kind, item.status, item.item_code, item.item_name) == (
        "record", "pending", "member.self_service_hour", "自主服务上报（每小时，需审核）")
    assert item.subject["name"] == "张晓丽" and "****" in item.subject["phone"]
    assert item.units == record.units and item.evidence == list(record.evidence)
    assert item.actions == ["approve", "reject", "request_info"]


def test_the_queue_filters_by_status_item_and_time(world):
    early = self_report(world["users"]["alice"], occurred_at=NOW - timedelta(days=10))
    late = self_report(world["users"]["alice"], "member.micro_wish")
    decide(world, "secretary", early)
    assert queue_ids(world, "admin") == [f"record:{late.id}"]
    assert queue_ids(world, "admin", status=RecordStatus.APPROVED) == [f"record:{early.id}"]
    assert queue_ids(world, "admin", item_code="member.self_service_hour") == []
    assert queue_ids(world, "admin", start=NOW - timedelta(days=2)) == [f"record:{late.id}"]
    assert queue_ids(world, "admin", status=RecordStatus.APPROVED, end=NOW - timedelta(days=5)) == [
        f"record:{early.id}"]


def test_members_and_hr_have_no_approvals_queue(world):
    for who in ("alice", "hr"):
        with pytest.raises(Forbidden):
            approval_queue(as_user(world["users"][who]), QueueFilter())
