"""Self-reported service (虚拟上报) and organization records (projects done, problems solved, resources).

A record names a policy item that a person must confirm (``approval`` branch_secretary or
community_admin); items scored automatically by check-in, and the report items the 双报到 workflow credits
itself, cannot be reported by hand. The approver is resolved once, at submission: the member's branch for
branch_secretary items, the member's residence community (or the organization's paired community) for
community_admin items. A record earns nothing until approved (``approvals.decisions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import attach_written, commit_keeping, db, utcnow
from points_service.domain.access import Principal, authorize, authorize_or_hide
from points_service.domain.approvals.decisions import approval_event_row, can_resubmit, may_resubmit, move_record
from points_service.domain.audit import audit
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from points_service.domain.lifecycle.guard import ACTIVE_MEMBER, MemberInactive
from points_service.domain.policy import PolicyItem, UnknownItem, policy_in_force
from points_service.domain.uploads import check_evidence_owner
from points_service.models import ApprovalEvent, Organization, OrgKind, Record, RecordStatus, Role, SubjectType
from points_service.transactions import insert_together

MAX_RECORD_AGE = timedelta(days=90)  # older service is reported too late to be verified
MAX_HOURS = Decimal(24)
MAX_EVIDENCE = 9  # a WeChat picker's limit of pictures
MAX_EVIDENCE_URL_LENGTH = 500
MAX_DESCRIPTION = 500
ROUTED_APPROVALS = {"branch_secretary": Role.BRANCH_SECRETARY, "community_admin": Role.COMMUNITY_ADMIN}
# Items the 双报到 workflow credits on confirmation: reporting them by hand would count them twice.
WORKFLOW_EVENTS = ("member_report", "member_rereport", "org_report")


@dataclass(frozen=True)
class Submission:
    item_code: str
    occurred_at: datetime
    description: str
    evidence: tuple[str, ...] = ()
    hours: Decimal | None = None
    request_key: str | None = None  # the Idempotency-Key: a retried submission is the record it wrote


def submit_member_record(actor: Principal, submission: Submission, *, now: datetime | None = None) -> Record:
    """The signed-in member reports service he did; it waits for the approver the policy item names."""
    if actor.member_id is None or actor.branch_id is None or actor.community_id is None:
        raise Forbidden("只有党员本人可以上报服务记录")  # his own principal, which names his branch and community
    now = now or utcnow()
    item = _reportable_item(submission.item_code, SubjectType.MEMBER, now)
    _check(submission, item, now)
    check_evidence_owner(actor, submission.evidence)
    # His branch and community came with his principal, read at the start of this request: no second read.
    scope_id = actor.branch_id if item.approval == "branch_secretary" else actor.community_id
    return _submit(actor, SubjectType.MEMBER, actor.member_id, item, scope_id, submission, now)


def submit_organization_record(actor: Principal, org_id: int, submission: Submission, *,
                               now: datetime | None = None) -> Record:
    """A department organization reports a co-building result; its paired community confirms it."""
    org = db.session.get(Organization, org_id)
    if org is None:
        raise NotFound("组织不存在")
    authorize_or_hide(actor, "organization.view", org, NotFound("组织不存在"))  # unseen: like a missing one
    authorize(actor, "organization.manage", org)
    if org.kind != OrgKind.DEPARTMENT:
        raise ValidationFailed({"organization_id": ["组织积分记在部门党组织名下，请以部门党组织上报"]})
    now = now or utcnow()
    item = _reportable_item(submission.item_code, SubjectType.ORGANIZATION, now)
    if item.approval != "community_admin":
        raise ValidationFailed({"item_code": [f"积分项“{item.name}”不由社区确认，不能作为组织记录上报"]})
    if org.paired_community_id is None:
        raise ValidationFailed({"organization_id": ["该组织尚未与社区结对，无法确定由哪个社区审核"]})
    _check(submission, item, now)
    check_evidence_owner(actor, submission.evidence)
    return _submit(actor, SubjectType.ORGANIZATION, org.id, item, org.paired_community_id, submission, now)


def _reportable_item(code: str, subject: SubjectType, now: datetime) -> PolicyItem:
    policy = policy_in_force(now)
    try:
        item = policy.item(code)
    except UnknownItem as exc:
        raise ValidationFailed({"item_code": [exc.message]}) from exc
    workflow = {policy.events.get(event) for event in WORKFLOW_EVENTS}
    if item.subject != subject or item.kind != "award" or item.code in workflow:
        raise ValidationFailed({"item_code": [f"积分项“{item.name}”（{code}）不能自行上报"]})
    if item.approval not in ROUTED_APPROVALS:
        raise ValidationFailed({"item_code": [f"积分项“{item.name}”（{code}）由扫码签到签退自动确认，不能自行上报"]})
    return item


def _check(submission: Submission, item: PolicyItem, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if item.unit == "hours":
        if submission.hours is None:
            errors["hours"] = ["按小时计分的项目须填写时长"]
        elif not Decimal(0) < submission.hours <= MAX_HOURS:
            errors["hours"] = [f"时长须大于 0 且不超过 {MAX_HOURS} 小时"]
    elif submission.hours is not None:
        errors["hours"] = ["按次计分的项目不填写时长"]
    if submission.occurred_at > now:
        errors["occurred_at"] = ["服务时间不能晚于现在"]
    elif now - submission.occurred_at > MAX_RECORD_AGE:
        errors["occurred_at"] = [f"只能上报 {MAX_RECORD_AGE.days} 天内的服务"]
    if not submission.description.strip():
        errors["description"] = ["请填写情况说明"]
    if len(submission.evidence) > MAX_EVIDENCE:
        errors["evidence"] = [f"佐证材料最多 {MAX_EVIDENCE} 项"]
    if errors:
        raise ValidationFailed(errors)


def _submit(actor: Principal, subject_type: SubjectType, subject_id: int, item: PolicyItem, scope_id: int,
            submission: Submission, now: datetime) -> Record:
    row = dict(
        subject_type=subject_type, subject_id=subject_id, item_code=item.code, occurred_at=submission.occurred_at,
        units=submission.hours if item.unit == "hours" else Decimal(1), description=submission.description.strip(),
        evidence=list(submission.evidence), status=RecordStatus.PENDING, route_role=ROUTED_APPROVALS[item.approval],
        route_scope_id=scope_id, submitted_by_id=actor.user_id, submitted_at=now, decided_by_id=None,
        decided_at=None, decision_comment="", request_key=submission.request_key,
    )
    event = approval_event_row("record", "", RecordStatus.PENDING, actor, "", now)
    # The record and its event in one statement where the database can: under ``autocommitted`` (POST
    # /records) that statement alone commits both. A member's record only while he is active (lifecycle.guard);
    # none when the submitter's request key already wrote one (that record is the answer).
    guard = (ACTIVE_MEMBER, subject_id) if subject_type == SubjectType.MEMBER else None
    unique = ("submitted_by_id", "request_key") if submission.request_key is not None else None
    record_id = insert_together(Record, row, ApprovalEvent, event, "target_id", guard=guard, unique=unique)
    if record_id is None:
        return _submitted_before(actor, submission.request_key)
    record = attach_written(Record(id=record_id, **row))
    record.item_name = item.name
    commit_keeping(record)  # the answer is dumped from it as written: no reload, no second policy read
    return record


def _submitted_before(actor: Principal, request_key: str | None) -> Record:
    """The record this submitter's ``request_key`` wrote before (a retry whose first answer was lost), as it is
    now; with none, nothing was written because the member is no longer active."""
    record = None if request_key is None else db.session.scalar(sa.select(Record).where(
        Record.submitted_by_id == actor.user_id, Record.request_key == request_key))
    if record is None:
        raise MemberInactive()
    commit_keeping(record)
    return record


def resubmit_record(actor: Principal, record_id: int, *, description: str | None = None,
                    evidence: list[str] | None = None, now: datetime | None = None) -> Record:
    """Answer a request for more information: optionally new text and evidence, and back to pending."""
    record = _own_record(actor, record_id)
    if not can_resubmit(actor, record):
        raise InvalidTransition("只有被要求补充材料的记录可以重新提交")
    changes = _resubmitted_changes(actor, description, evidence)
    # What the approver will look at anew: whether the text changed, and how much evidence there is now.
    detail = {"description_changed": changes.get("description", record.description) != record.description,
              "evidence_count": len(changes.get("evidence", record.evidence or []))}
    try:
        move_record(record, RecordStatus.PENDING, actor, now=now or utcnow(), **changes)
        audit("record.resubmit", actor=actor, target=record, detail=detail)
        db.session.commit()
    except InvalidTransition:
        db.session.rollback()
        raise
    return record


def _resubmitted_changes(actor: Principal, description: str | None, evidence: list[str] | None) -> dict:
    changes: dict = {}
    if description is not None:
        if not description.strip():
            raise ValidationFailed({"description": ["请填写情况说明"]})
        changes["description"] = description.strip()
    if evidence is not None:
        if len(evidence) > MAX_EVIDENCE:
            raise ValidationFailed({"evidence": [f"佐证材料最多 {MAX_EVIDENCE} 项"]})
        check_evidence_owner(actor, evidence)
        changes["evidence"] = list(evidence)
    return changes


def _own_record(actor: Principal, record_id: int) -> Record:
    record = db.session.get(Record, record_id, populate_existing=True)  # as stored, not as last answered
    if record is None:
        raise NotFound("记录不存在")
    if not may_resubmit(actor, record):  # someone else's record answers like a missing one
        raise NotFound("记录不存在")
    return record


def own_records(actor: Principal, status: RecordStatus | None = None) -> sa.Select:
    """The records about the actor as a member and those he submitted (organization records), newest first."""
    mine = [Record.submitted_by_id == actor.user_id]
    if actor.member_id is not None:
        mine.append(sa.and_(Record.subject_type == SubjectType.MEMBER, Record.subject_id == actor.member_id))
    statement = sa.select(Record).where(sa.or_(*mine)).order_by(Record.submitted_at.desc(), Record.id.desc())
    return statement if status is None else statement.where(Record.status == status)
