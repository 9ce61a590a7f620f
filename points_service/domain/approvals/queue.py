"""The approvals queue: records routed to the caller and activity proposals waiting for him, in one list.

Scoping is SQL (a client-supplied id never widens it) and mirrors the predicates in ``decisions``:
branch secretaries see records routed to branches under their grants, community admins records routed to
their communities, admins everything; proposals wait for the proposing organization's managers first and
the host community's admins second. What one submitted oneself (or what is about oneself) never shows.
Items are typed ids, ``record:12`` and ``activity:5``, the same ids the decision endpoints take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db
from points_service.domain.access import ORG_MANAGERS, Principal, authorize, nodes_in_scope
from points_service.domain.approvals.decisions import (
    PROPOSAL_STARTED,
    Stage,
    actions_for,
    approval_id,
    proposal_started,
    stage_of,
)
from points_service.domain.ledger.reading import item_names
from points_service.models import (
    Activity,
    ActivityStatus,
    Member,
    Organization,
    Record,
    RecordStatus,
    Region,
    Role,
    SubjectType,
)
from points_service.models.service import ProposalStep

QUEUE_STATUS_OF_STAGE = {Stage.PROPOSED: "pending", Stage.ORG_APPROVED: "pending", Stage.PUBLISHED: "approved"}


@dataclass(frozen=True)
class QueueFilter:
    status: RecordStatus = RecordStatus.PENDING
    item_code: str | None = None
    start: datetime | None = None  # occurred_at (an activity's starts_at) >= start
    end: datetime | None = None  # occurred_at < end


@dataclass(frozen=True)
class QueueItem:
    id: str
    kind: str  # record | activity
    status: str  # pending | needs_info | approved | rejected (an activity: pending until published)
    step: str | None  # activities: organization | community
    item_code: str
    item_name: str
    subject: dict  # {type, id, name, phone (masked, members only)}
    occurred_at: datetime
    ends_at: datetime | None
    units: Decimal | None
    description: str
    evidence: list[str]
    submitted_at: datetime
    community: dict | None
    comment: str
    actions: list[str]
    notice: str = ""  # why an action one might expect is missing (a proposal whose start has come: reject only)


def record_queue_scope(actor: Principal) -> ColumnElement[bool]:
    """Records routed to the actor (and not his own)."""
    not_own: list[ColumnElement[bool]] = [Record.submitted_by_id != actor.user_id]
    if actor.member_id is not None:
        not_own.append(sa.not_(sa.and_(Record.subject_type == SubjectType.MEMBER,
                                       Record.subject_id == actor.member_id)))
    if actor.is_admin:
        return sa.and_(*not_own)
    routed: list[ColumnElement[bool]] = []
    if (branches := nodes_in_scope(actor, Organization, Role.BRANCH_SECRETARY)) is not None:
        routed.append(sa.and_(Record.route_role == Role.BRANCH_SECRETARY, Record.route_scope_id.in_(branches)))
    if (communities := nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)) is not None:
        routed.append(sa.and_(Record.route_role == Role.COMMUNITY_ADMIN, Record.route_scope_id.in_(communities)))
    return sa.and_(sa.or_(*routed), *not_own) if routed else sa.false()


def proposal_queue_scope(actor: Principal) -> ColumnElement[bool]:
    """Proposed activities waiting for a step the actor may take (and not proposed by him)."""
    waiting = sa.and_(Activity.status == ActivityStatus.PROPOSED, Activity.proposed_by_org_id.is_not(None),
                      sa.or_(Activity.created_by_id.is_(None), Activity.created_by_id != actor.user_id))
    if actor.is_admin:
        return waiting
    steps: list[ColumnElement[bool]] = []
    if (orgs := nodes_in_scope(actor, Organization, *ORG_MANAGERS)) is not None:
        steps.append(sa.and_(Activity.approval_step == ProposalStep.ORGANIZATION,
                             Activity.proposed_by_org_id.in_(orgs)))
    if (communities := nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)) is not None:
        steps.append(sa.and_(Activity.approval_step == ProposalStep.COMMUNITY, Activity.community_id.in_(communities)))
    return sa.and_(waiting, sa.or_(*steps)) if steps else sa.false()


def _records(actor: Principal, filters: QueueFilter) -> sa.Select:
    statement = sa.select(sa.literal_column("'record'", sa.String).label("kind"), Record.id.label("id"),
                          Record.submitted_at.label("at")).where(record_queue_scope(actor),
                                                                 Record.status == filters.status)
    return _filtered(statement, Record.item_code, Record.occurred_at, filters)


def _proposals(actor: Principal, filters: QueueFilter) -> sa.Select:
    statement = sa.select(sa.literal_column("'activity'", sa.String).label("kind"), Activity.id.label("id"),
                          Activity.created_at.label("at")).where(proposal_queue_scope(actor))
    return _filtered(statement, Activity.item_code, Activity.starts_at, filters)


def _filtered(statement: sa.Select, item_column, time_column, filters: QueueFilter) -> sa.Select:
    if filters.item_code:
        statement = statement.where(item_column == filters.item_code)
    if filters.start is not None:
        statement = statement.where(time_column >= filters.start)
    if filters.end is not None:
        statement = statement.where(time_column < filters.end)
    return statement


def approval_queue(actor: Principal, filters: QueueFilter, *, page: int = 1, page_size: int = 20) -> dict:
    """One page of the actor's queue; ``total`` is the number of matching items (the pending count).

    Pending items come oldest first (first in, first decided); decided ones newest first. Proposals are
    listed only under ``status=pending``: once decided they are activities like any other."""
    authorize(actor, "approvals.list")
    parts = [_records(actor, filters)]
    if filters.status == RecordStatus.PENDING:
        parts.append(_proposals(actor, filters))
    rows = (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(rows))
    order = (rows.c.at, rows.c.kind, rows.c.id)
    if filters.status != RecordStatus.PENDING:
        order = tuple(column.desc() for column in order)
    page_rows = db.session.execute(sa.select(rows.c.kind, rows.c.id).order_by(*order)
                                   .limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": describe(actor, _load(page_rows)), "page": page, "page_size": page_size, "total": total}


def _load(rows) -> list[Record | Activity]:
    ids = {"record": [], "activity": []}
    for kind, target_id in rows:
        ids[kind].append(target_id)
    loaded = {("record", r.id): r for r in db.session.scalars(sa.select(Record).where(Record.id.in_(ids["record"])))}
    loaded |= {("activity", a.id): a
               for a in db.session.scalars(sa.select(Activity).where(Activity.id.in_(ids["activity"])))}
    return [loaded[(kind, target_id)] for kind, target_id in rows]


def describe(actor: Principal, targets: list[Record | Activity]) -> list[QueueItem]:
    """Queue items for these targets, with subjects loaded in two queries and the actor's possible actions."""
    member_ids = {t.subject_id for t in targets if isinstance(t, Record) and t.subject_type == SubjectType.MEMBER}
    org_ids = {t.subject_id for t in targets if isinstance(t, Record) and t.subject_type == SubjectType.ORGANIZATION}
    org_ids |= {t.proposed_by_org_id for t in targets if isinstance(t, Activity)}
    members = _by_id(Member, member_ids)
    orgs = _by_id(Organization, org_ids)
    # A decision's targets carry their item's name (``decisions._apply``): then no policy read.
    carried = {t.item_code: getattr(t, "item_name", None) for t in targets}
    names = carried if all(carried.values()) else item_names()
    return [_record_item(actor, t, members, orgs, names) if isinstance(t, Record)
            else _activity_item(actor, t, orgs, names) for t in targets]


def _by_id(model, ids: set[int]) -> dict:
    """The rows of these ids in one statement; none for no ids."""
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))} if ids else {}


def _record_item(actor: Principal, record: Record, members: dict, orgs: dict, names: dict) -> QueueItem:
    if record.subject_type == SubjectType.MEMBER:
        member = members.get(record.subject_id)
        subject = {"type": "member", "id": record.subject_id, "name": member.name if member else "",
                   "phone": member.phone_masked if member else None}
    else:
        org = orgs.get(record.subject_id)
        subject = {"type": "organization", "id": record.subject_id, "name": org.name if org else "", "phone": None}
    return QueueItem(
        id=approval_id(record), kind="record", status=str(record.status), step=None, item_code=record.item_code,
        item_name=names.get(record.item_code, record.item_code), subject=subject, occurred_at=record.occurred_at,
        ends_at=None, units=record.units, description=record.description, evidence=list(record.evidence or []),
        submitted_at=record.submitted_at, community=None, comment=record.decision_comment,
        actions=actions_for(actor, record),
    )


def _activity_item(actor: Principal, activity: Activity, orgs: dict, names: dict) -> QueueItem:
    org = orgs.get(activity.proposed_by_org_id)
    stage, actions = stage_of(activity), actions_for(actor, activity)
    step = str(activity.approval_step) if activity.status == ActivityStatus.PROPOSED else None
    return QueueItem(
        id=approval_id(activity), kind="activity", status=QUEUE_STATUS_OF_STAGE.get(stage, str(stage)), step=step,
        item_code=activity.item_code, item_name=names.get(activity.item_code, activity.item_code),
        subject={"type": "organization", "id": activity.proposed_by_org_id, "name": org.name if org else "",
                 "phone": None},
        occurred_at=activity.starts_at, ends_at=activity.ends_at, units=None, description=activity.title,
        evidence=[], submitted_at=activity.created_at,
        community={"id": activity.community_id, "name": activity.community.name}, comment="",
        actions=actions, notice=PROPOSAL_STARTED if "reject" in actions and proposal_started(activity) else "",
    )
