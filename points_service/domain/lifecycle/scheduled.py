"""Storing a future-dated deactivation or transfer: nothing about the member changes until its date, when the
``member_changes`` job applies it (``due``). At most one change waits per member (a partial unique index)."""

from __future__ import annotations

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


def has_waiting_change(member_id: int) -> bool:
    """Whether a scheduled change already waits for the member (another one would be refused)."""
    return db.session.scalar(sa.select(ScheduledMemberChange.id).where(
        ScheduledMemberChange.member_id == member_id,
        ScheduledMemberChange.status == ScheduledChangeStatus.SCHEDULED).limit(1)) is not None


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
