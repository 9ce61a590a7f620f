"""Storing a future-dated deactivation or transfer: nothing about the member changes until its date, when the
``member_changes`` job applies it (``due``). At most one change waits per member (a partial unique index)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db
from points_service.domain.access import Principal
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict
from points_service.models import Member, ScheduledChangeKind, ScheduledChangeStatus, ScheduledMemberChange


class ChangeAlreadyScheduled(Conflict):
    code, message = "member_change_scheduled", "该党员已有一项待生效的状态变更，请先取消"


def has_waiting_change(member_id: int, kind: ScheduledChangeKind | None = None) -> bool:
    """Whether a scheduled change (of ``kind``, or any) already waits for the member."""
    return bool(members_with_waiting_changes([member_id], kind))


def members_with_waiting_changes(member_ids: Iterable[int], kind: ScheduledChangeKind | None = None) -> set[int]:
    """Those of ``member_ids`` for whom a scheduled change (of ``kind``, or any) waits: a transfer of one of them
    now would leave the change to apply later over it, moving him back where it was asked from (one statement
    for a roster file)."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    statement = sa.select(ScheduledMemberChange.member_id).where(
        ScheduledMemberChange.member_id.in_(ids), ScheduledMemberChange.status == ScheduledChangeStatus.SCHEDULED)
    if kind is not None:
        statement = statement.where(ScheduledMemberChange.kind == kind)
    return set(db.session.scalars(statement))


def schedule(actor: Principal, member: Member, kind: ScheduledChangeKind, effective_on: date, now: datetime,
             **fields) -> ScheduledMemberChange:
    """Store the change (flushes only); 409 ``member_change_scheduled`` while another one waits."""
    change = ScheduledMemberChange(member_id=member.id, kind=kind, effective_on=effective_on,
                                   actor_id=actor.user_id, created_at=now,
                                   **{**fields, "reason": (fields.get("reason") or "").strip()[:200]})
    try:
        with db.session.begin_nested():
            db.session.add(change)
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ChangeAlreadyScheduled() from None
    audit(f"member.schedule_{kind}", actor=actor, target=member, detail={
        "scheduled_change_id": change.id, "effective_on": effective_on.isoformat(),
        **{key: str(value) if value is not None else None for key, value in fields.items()}})
    return change
