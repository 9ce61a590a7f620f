"""Approvals: the state machines of records and proposed activities, who may move them, and decisions.

Records (self-reports and organization records)::

    pending ──approve──> approved        (terminal; the points are credited in the same transaction)
    pending ──reject───> rejected        (terminal)
    pending ──request-info──> needs_info ──resubmit (the submitter)──> pending

Proposed activities go through two approvals, each an ApprovalEvent::

    proposed ──(the proposing organization's secretary / org admin)──> org_approved
    org_approved ──(the host community's admin)──> published
    proposed / org_approved ──reject──> rejected
    org_approved ──edit (``activities.signups.edit_activity``)──> proposed   (approved again from step 1)
    published ──cancel (``activities.cancelling.cancel_activity``)──> cancelled

Every transition is a compare-and-set UPDATE (``WHERE id = ? AND status = <the state we read>``): of two
deciders exactly one changes the row, the other gets 409 ``invalid_transition`` — also on SQLite, which
ignores row locks. Approval points go through ``ledger.credit`` in the deciding transaction (I6: no
approved record without its award, no award without its approved record). Nobody decides what he
submitted himself, nor his own record. Helpers here only flush; the use cases own the commit.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from points_service.db import MAX_ROW_ID, commit_keeping, db, utcnow
from points_service.domain import notifications
from points_service.domain.access import Principal, allowed
from points_service.domain.audit import audit
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound, ServiceError, ValidationFailed
from points_service.domain.ledger.credit import Fact, credit, lock_subjects
from points_service.domain.ledger.reading import item_names
from points_service.models import (
    TERMINAL_RECORD_STATUSES,
    Activity,
    ActivityStatus,
    ApprovalEvent,
    Organization,
    Record,
    RecordStatus,
    SourceType,
    SubjectType,
)
from points_service.models.service import ProposalStep
from points_service.transactions import insert_row

MAX_BATCH = 100


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"


# ------------------------------------------------------------------------------------- the state machines

RECORD_TRANSITIONS: dict[RecordStatus, frozenset[RecordStatus]] = {
    RecordStatus.PENDING: frozenset({RecordStatus.APPROVED, RecordStatus.REJECTED, RecordStatus.NEEDS_INFO}),
    RecordStatus.NEEDS_INFO: frozenset({RecordStatus.PENDING}),
    RecordStatus.APPROVED: frozenset(),
    RecordStatus.REJECTED: frozenset(),
}
RECORD_DECISIONS = {
    Decision.APPROVE: RecordStatus.APPROVED,
    Decision.REJECT: RecordStatus.REJECTED,
    Decision.REQUEST_INFO: RecordStatus.NEEDS_INFO,
}


class Stage(enum.StrEnum):
    """Where a proposed activity stands; the names are those written to ApprovalEvent."""

    PROPOSED = "proposed"  # waits for the proposing organization
    ORG_APPROVED = "org_approved"  # waits for the host community
    PUBLISHED = "published"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


PROPOSAL_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.PROPOSED: frozenset({Stage.ORG_APPROVED, Stage.REJECTED}),
    # An edit after the organization's approval sends the proposal back to it (not a decision: an edit).
    Stage.ORG_APPROVED: frozenset({Stage.PUBLISHED, Stage.REJECTED, Stage.PROPOSED}),
    # Called off by its host community before it ends, while nobody has checked in (not a decision either).
    Stage.PUBLISHED: frozenset({Stage.CANCELLED}),
    Stage.REJECTED: frozenset(),
    Stage.CANCELLED: frozenset(),
}
APPROVAL_NEXT = {Stage.PROPOSED: Stage.ORG_APPROVED, Stage.ORG_APPROVED: Stage.PUBLISHED}
# The (status, approval_step) columns that spell each stage.
STAGE_COLUMNS = {
    Stage.PROPOSED: (ActivityStatus.PROPOSED, ProposalStep.ORGANIZATION),
    Stage.ORG_APPROVED: (ActivityStatus.PROPOSED, ProposalStep.COMMUNITY),
}


PROPOSAL_STARTED = "活动已开始，不能再批准，请驳回"


def can_transition(start, end) -> bool:
    """Whether the table allows start -> end (for records or for proposal stages)."""
    table = RECORD_TRANSITIONS if isinstance(start, RecordStatus) else PROPOSAL_TRANSITIONS
    return end in table.get(start, frozenset())


def stage_of(activity: Activity) -> Stage:
    if activity.status == ActivityStatus.PROPOSED:
        return Stage.ORG_APPROVED if activity.approval_step == ProposalStep.COMMUNITY else Stage.PROPOSED
    return Stage(str(activity.status))


# ------------------------------------------------------------------------------------------ who may decide

def may_decide_proposal(actor: Principal, activity: Activity) -> bool:
    """Step 1 is the proposing organization's (its secretary or org admin), step 2 the host community's.
    A decided proposal keeps the step it was decided at, so its approver hears 409, others 403."""
    if activity.created_by_id is not None and activity.created_by_id == actor.user_id:
        return False  # nobody approves what he proposed himself
    if activity.approval_step == ProposalStep.ORGANIZATION:
        org = db.session.get(Organization, activity.proposed_by_org_id) if activity.proposed_by_org_id else None
        return actor.is_admin if org is None else allowed(actor, "organization.manage", org)
    return allowed(actor, "activity.accept", activity)


def may_decide(actor: Principal, target: Record | Activity) -> bool:
    if isinstance(target, Record):
        return allowed(actor, "record.decide", target)
    return may_decide_proposal(actor, target)


def _decision_allowed(target: Record | Activity, decision: Decision) -> bool:
    if isinstance(target, Record):
        return can_transition(RecordStatus(target.status), RECORD_DECISIONS[decision])
    stage = stage_of(target)
    end = Stage.REJECTED if decision == Decision.REJECT else APPROVAL_NEXT.get(stage)
    return decision != Decision.REQUEST_INFO and end is not None and can_transition(stage, end)


def proposal_started(target: Record | Activity, now: datetime | None = None) -> bool:
    """A proposal whose start has come is not approved any more (published now, every check-in would be late):
    it is only rejected."""
    return isinstance(target, Activity) and target.starts_at <= (now or utcnow())


def can_approve(actor: Principal, target: Record | Activity, now: datetime | None = None) -> bool:
    return (_decision_allowed(target, Decision.APPROVE) and not proposal_started(target, now)
            and may_decide(actor, target))


def can_reject(actor: Principal, target: Record | Activity) -> bool:
    return _decision_allowed(target, Decision.REJECT) and may_decide(actor, target)


def can_request_info(actor: Principal, target: Record | Activity) -> bool:
    return _decision_allowed(target, Decision.REQUEST_INFO) and may_decide(actor, target)


def may_resubmit(actor: Principal, record: Record) -> bool:
    """Who answers a request for more information: the member himself, or a manager of the organization."""
    if record.subject_type == SubjectType.MEMBER:
        return actor.member_id is not None and record.subject_id == actor.member_id
    org = db.session.get(Organization, record.subject_id)
    return org is not None and allowed(actor, "organization.manage", org)


def can_resubmit(actor: Principal, record: Record) -> bool:
    return may_resubmit(actor, record) and can_transition(RecordStatus(record.status), RecordStatus.PENDING)


def may_see(actor: Principal, target: Record | Activity) -> bool:
    """Whether the item exists for the actor. A record: for its approver, its submitter and those who answer for
    it (the member, the organization's managers). A proposal: as its activity does (published, or managed by
    him). Deciding an item he does not see is refused like an id that names nothing."""
    if isinstance(target, Record):
        return target.submitted_by_id == actor.user_id or may_resubmit(actor, target) or may_decide(actor, target)
    return target.status == ActivityStatus.PUBLISHED or allowed(actor, "activity.manage", target)


def actions_for(actor: Principal, target: Record | Activity) -> list[str]:
    """The decisions this actor may take on this target now (for the console's buttons)."""
    checks = {Decision.APPROVE: can_approve, Decision.REJECT: can_reject, Decision.REQUEST_INFO: can_request_info}
    return [str(decision) for decision, check in checks.items() if check(actor, target)]


# ---------------------------------------------------------------------------------------- the transitions

def _compare_and_set(model, target_id: int, expected: dict, values: dict) -> None:
    """UPDATE ... WHERE the row still holds what we read; no row changed means someone else moved it first."""
    criteria = [getattr(model, column) == value for column, value in expected.items()]
    result = db.session.execute(sa.update(model).where(model.id == target_id, *criteria).values(**values))
    if result.rowcount != 1:
        raise InvalidTransition("该事项已被他人处理或状态已变化，请刷新后重试")


def approval_event(target_type: str, target_id: int, start: str, end: str, actor: Principal, comment: str,
                   now: datetime) -> None:
    insert_row(ApprovalEvent, {**approval_event_row(target_type, start, end, actor, comment, now),
                               "target_id": target_id})


def approval_event_row(target_type: str, start: str, end: str, actor: Principal, comment: str,
                       now: datetime) -> dict:
    """An ApprovalEvent's columns but its ``target_id``."""
    return {"target_type": target_type, "from_status": str(start), "to_status": str(end), "actor_id": actor.user_id,
            "at": now, "comment": comment[:200]}


def move_record(record: Record, end: RecordStatus, actor: Principal, *, comment: str = "",
                now: datetime | None = None, **changes) -> None:
    """One record transition: checked against the table, compare-and-set, and its ApprovalEvent. Flushes."""
    now = now or utcnow()
    start = RecordStatus(record.status)
    if not can_transition(start, end):
        raise InvalidTransition()
    values = {"status": end, **changes}
    if end != RecordStatus.PENDING:
        values["decision_comment"] = comment[:200]
    if end in TERMINAL_RECORD_STATUSES:
        values.update(decided_by_id=actor.user_id, decided_at=now)
    _compare_and_set(Record, record.id, {"status": start}, values)
    approval_event("record", record.id, start, end, actor, comment, now)


def move_activity(activity: Activity, end: Stage, actor: Principal, *, comment: str = "",
                  now: datetime | None = None) -> None:
    start = stage_of(activity)
    if not can_transition(start, end):
        raise InvalidTransition()
    # A proposal still waiting changes its step; a decided one keeps the step it was decided at.
    status, step = STAGE_COLUMNS[end] if end in STAGE_COLUMNS else (ActivityStatus(end.value), activity.approval_step)
    expected_status, expected_step = STAGE_COLUMNS[start] if start in STAGE_COLUMNS else (
        ActivityStatus(start.value), activity.approval_step)
    _compare_and_set(Activity, activity.id, {"status": expected_status, "approval_step": expected_step},
                     {"status": status, "approval_step": step})
    approval_event("activity", activity.id, start, end, actor, comment, now or utcnow())


def record_fact(record: Record) -> Fact:
    return Fact(SubjectType(record.subject_type), record.subject_id, record.item_code, SourceType.RECORD,
                str(record.id), record.occurred_at, record.units)


# ------------------------------------------------------------------------------------------ the use cases

@dataclass(frozen=True)
class Failure:
    code: str  # not_found | forbidden | invalid_transition
    message: str


FAILURE_MESSAGES = {
    "not_found": "审批事项不存在",
    "forbidden": "无权审批此事项（不在管辖范围内或为本人提交）",
    "invalid_transition": "该事项当前状态不能执行此操作",
}
_ID = re.compile(r"^(record|activity):([1-9][0-9]{0,17})$")


def approval_id(target: Record | Activity) -> str:
    return f"{'record' if isinstance(target, Record) else 'activity'}:{target.id}"


def find_target(raw_id: str) -> Record | Activity | None:
    """``record:12`` or ``activity:5``; anything else names nothing."""
    match = _ID.match(raw_id or "")
    if match is None:
        return None
    model, row_id = (Record if match.group(1) == "record" else Activity), int(match.group(2))
    if row_id > MAX_ROW_ID:
        return None  # past any row id: names nothing, and PostgreSQL would refuse it as out of range
    # Read afresh even when the session holds it (a submission's answer keeps it loaded): a decision
    # starts from the row as stored.
    target = db.session.get(model, row_id, populate_existing=True)
    if isinstance(target, Activity) and target.proposed_by_org_id is None:
        return None  # an activity published directly never was an approval item
    return target


def _failure(actor: Principal, target: Record | Activity | None, decision: Decision) -> Failure | None:
    decides = target is not None and may_decide(actor, target)  # asked once: it may read the approver's scope
    if not decides and (target is None or not may_see(actor, target)):
        return Failure("not_found", FAILURE_MESSAGES["not_found"])
    if not decides:
        return Failure("forbidden", FAILURE_MESSAGES["forbidden"])
    if not _decision_allowed(target, decision):
        return Failure("invalid_transition", FAILURE_MESSAGES["invalid_transition"])
    return None


def decide(actor: Principal, raw_id: str, decision: Decision, comment: str = "", *,
           now: datetime | None = None) -> Record | Activity:
    """Approve, reject or ask for more information about one record or proposed activity: 404 for an item the
    actor does not see (as for an unknown id), 403 for one he sees but may not decide, 409 for its state."""
    target = find_target(raw_id)
    failure = _failure(actor, target, decision)
    if failure is not None:
        raise {"not_found": NotFound, "forbidden": Forbidden}.get(failure.code, InvalidTransition)(failure.message)
    _apply(actor, [target], decision, comment, now or utcnow())
    return target


def decide_batch(actor: Principal, raw_ids: list[str], decision: Decision, comment: str = "", *,
                 now: datetime | None = None) -> list[Record | Activity]:
    """All or nothing: if any id may not be decided by the actor now, nothing changes and each failure
    is reported under its id (422 unknown or unseen ids, else 403 own or not his to decide, else 409 wrong state)."""
    if decision == Decision.REQUEST_INFO:
        raise ValidationFailed({"decision": ["批量审批只能是 approve 或 reject"]})
    _check_batch_ids(raw_ids)
    targets = {raw_id: find_target(raw_id) for raw_id in raw_ids}
    failures = {raw_id: f for raw_id, t in targets.items() if (f := _failure(actor, t, decision)) is not None}
    if failures:
        raise _batch_refused(failures)
    # A fixed lock order (records, then activities, by id) keeps concurrent batches from deadlocking.
    ordered = sorted(targets.values(), key=lambda t: (isinstance(t, Activity), t.id))
    _apply(actor, ordered, decision, comment, now or utcnow())
    return [targets[raw_id] for raw_id in raw_ids]


def _check_batch_ids(raw_ids: list[str]) -> None:
    if not 1 <= len(raw_ids) <= MAX_BATCH:
        raise ValidationFailed({"ids": [f"一次须审批 1–{MAX_BATCH} 项"]})
    if len(set(raw_ids)) != len(raw_ids):
        raise ValidationFailed({"ids": ["编号不能重复"]})


def _batch_refused(failures: dict[str, Failure]) -> ServiceError:
    data = {"errors": {raw_id: [f.message] for raw_id, f in failures.items()},
            "reasons": {raw_id: f.code for raw_id, f in failures.items()}}
    codes = {failure.code for failure in failures.values()}
    if "not_found" in codes:
        return ServiceError("批量审批中有不存在的事项，未做任何处理", code="validation_failed", status=422, data=data)
    if "forbidden" in codes:
        return Forbidden("批量审批未执行：部分事项无权处理", data=data)
    return InvalidTransition("批量审批未执行：部分事项当前状态不能处理", data=data)


def _apply(actor: Principal, targets: Iterable[Record | Activity], decision: Decision, comment: str,
           now: datetime) -> None:
    """Move every target, then credit the approved records, then commit — or roll all of it back."""
    comment = (comment or "").strip()
    if decision in (Decision.REJECT, Decision.REQUEST_INFO) and not comment:
        field = "reason" if decision == Decision.REJECT else "comment"
        raise ValidationFailed({field: ["驳回须填写理由" if decision == Decision.REJECT else "请说明需要补充的内容"]})
    targets = list(targets)
    try:
        # The records' subjects first, in one order (``lock_subjects``: as his deactivation, which then closes his
        # records, locks him), then every state change, then the credits. Every decision, not only an approval:
        # a rejection's notice names the member (a foreign key, so a share lock on his row) after the records'
        # rows are held, which waited in a cycle with an approval holding him and waiting for those records.
        lock_subjects((t.subject_type, t.subject_id) for t in targets if isinstance(t, Record))
        for target in targets:
            try:
                _move(actor, target, decision, comment, now)
            except InvalidTransition as lost:  # another decider moved it after our check
                raise InvalidTransition(lost.message, data={"errors": {approval_id(target): [lost.message]},
                                                            "reasons": {approval_id(target): lost.code}}) from lost
        for target in targets:
            if isinstance(target, Record) and decision == Decision.APPROVE:
                credit(record_fact(target), actor_id=actor.user_id, at=now)
            _audit(actor, target, decision, comment)
            notifications.record_decided(target, comment)
        _carry_item_names(targets, now)
        commit_keeping(*targets)  # the answer describes them as written: no reload, no second policy read
    except ServiceError:
        db.session.rollback()
        raise


def _carry_item_names(targets: list[Record | Activity], now: datetime) -> None:
    """Each record's item name under the policy in force, which the decision has read already."""
    records = [target for target in targets if isinstance(target, Record)]
    names = item_names(now) if records else {}
    for record in records:
        record.item_name = names.get(record.item_code, record.item_code)


def _move(actor: Principal, target: Record | Activity, decision: Decision, comment: str, now: datetime) -> None:
    if isinstance(target, Record):
        move_record(target, RECORD_DECISIONS[decision], actor, comment=comment, now=now)
        return
    if decision == Decision.APPROVE and proposal_started(target, now):
        raise InvalidTransition(PROPOSAL_STARTED)
    stage = stage_of(target)
    end = Stage.REJECTED if decision == Decision.REJECT else APPROVAL_NEXT[stage]
    move_activity(target, end, actor, comment=comment, now=now)


def _audit(actor: Principal, target: Record | Activity, decision: Decision, comment: str) -> None:
    kind = "record" if isinstance(target, Record) else "activity"
    detail = {"status": str(target.status), "comment": comment}
    if isinstance(target, Record):
        detail["subject"] = f"{target.subject_type}:{target.subject_id}"
        detail["item_code"] = target.item_code
    else:
        detail["stage"] = str(stage_of(target))
    audit(f"{kind}.{decision}", actor=actor, target=target, detail=detail)
