"""Member status use cases: deactivate (离职/退休/组织关系转出), reactivate, transfer — dated and audited.

A deactivation takes effect at the local midnight of its effective date (today or earlier; a later date is stored
as a scheduled change and applied by the ``member_changes`` job on that date, ``scheduled``). In its one
transaction: the member row is marked (``is_active``, ``inactive_since``), his current affiliation is closed at
that instant, his pending reports and records are closed (rejected with the reason), his sign-ups to activities
not yet ended are withdrawn, ``close_open_orders`` runs, he leaves the standing board and every board of a period
ending later (``lifecycle/boards.py``), his branch's head count drops, and a ``MemberStatusChange`` and an audit
row are written. History, frozen results and annual statements are never touched.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize, authorize_or_hide
from points_service.domain.audit import audit
from points_service.domain.boards.maintain import count_member
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.ledger.credit import lock_subject
from points_service.domain.lifecycle.boards import leave_boards, return_to_boards
from points_service.domain.lifecycle.closing import close_open_items
from points_service.domain.lifecycle.scheduled import schedule
from points_service.domain.periods import LOCAL_TZ, local_midnight
from points_service.domain.structure import current_affiliation
from points_service.models import (
    DEACTIVATION_REASON_NAMES,
    Affiliation,
    DeactivationReason,
    Member,
    MemberStatusChange,
    ScheduledChangeKind,
    ScheduledMemberChange,
    StatusChangeKind,
    SubjectType,
)


class AlreadyInactive(Conflict):
    code, message = "member_already_inactive", "该党员已停用"


class AlreadyActive(Conflict):
    code, message = "member_already_active", "该党员未停用，无需恢复"


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


def managed_member(actor: Principal, member_id: int, *, lock: bool = True) -> Member:
    try:
        member = lock_subject(SubjectType.MEMBER, member_id) if lock else db.session.get(Member, member_id)
    except NotFound:
        member = None
    if member is None:
        raise NotFound("党员不存在")
    authorize_or_hide(actor, "member.view", member, NotFound("党员不存在"))  # unseen: like a missing one
    authorize(actor, "member.manage_status", member)
    return member


def effective_instant(member: Member, effective_on: date, now: datetime) -> datetime:
    """The local midnight of ``effective_on``: not in the future, and after his current affiliation began."""
    return effective_in(member, effective_on, now)[0]


def effective_in(member: Member, effective_on: date, now: datetime) -> tuple[datetime, Affiliation | None]:
    """``effective_instant`` and the current affiliation it was checked against, which a change closes (read
    once: a roster file of 5,000 changes sends 5,000 statements fewer)."""
    if effective_on > local_today(now):
        raise ValidationFailed({"effective_on": ["生效日期不能晚于今天"]})
    at = local_midnight(effective_on)
    current = current_affiliation(member)
    if current is not None and at <= current.valid_from:
        began = current.valid_from.astimezone(LOCAL_TZ).date().isoformat()
        raise ValidationFailed({"effective_on": [f"生效日期须晚于当前组织关系的开始日期（{began}）"]})
    return at, current


def deactivate_member(actor: Principal, member_id: int, reason_code: DeactivationReason, reason: str,
                      effective_on: date, *, now: datetime | None = None) -> MemberStatusChange | ScheduledMemberChange:
    """Deactivate from ``effective_on`` (today or earlier); a later date is stored as a scheduled change."""
    now = now or utcnow()
    member = managed_member(actor, member_id)
    if effective_on > local_today(now):
        if not member.is_active:
            raise AlreadyInactive()
        change = schedule(actor, member, ScheduledChangeKind.DEACTIVATE, effective_on, now,
                          reason_code=reason_code, reason=reason)
    else:
        change = apply_deactivation(actor, member, reason_code, reason, effective_on, now)
    db.session.commit()
    return change


def apply_deactivation(actor: Principal, member: Member, reason_code: DeactivationReason, reason: str,
                       effective_on: date, now: datetime) -> MemberStatusChange:
    """Everything a deactivation changes (see the module doc). Flushes only: the roster import calls it too."""
    member = _locked(member)
    if not member.is_active:
        raise AlreadyInactive()
    reason = (reason or "").strip() or DEACTIVATION_REASON_NAMES[reason_code]
    at, current = effective_in(member, effective_on, now)
    if current is not None:
        current.valid_to = at
    member.is_active, member.inactive_since = False, at
    db.session.flush()
    # The 积分超市 items of the orders it cancels before the organizations' board rows, as a roster import takes
    # them (it writes those rows, summed, at its end): one order for every writer that takes both.
    closed = close_open_items(actor, member, f"{DEACTIVATION_REASON_NAMES[reason_code]}：{reason}", now)
    removed = leave_boards(member.id, at)
    count_member(member.branch_id, -1)
    return _record(actor, member, StatusChangeKind.DEACTIVATE, reason, effective_on, at, reason_code,
                   {"board_rows_removed": removed, **closed})


def reactivate_member(actor: Principal, member_id: int, reason: str = "", *,
                      now: datetime | None = None) -> MemberStatusChange:
    now = now or utcnow()
    member = managed_member(actor, member_id)
    change = apply_reactivation(actor, member, reason, now)
    db.session.commit()
    return change


def apply_reactivation(actor: Principal, member: Member, reason: str, now: datetime) -> MemberStatusChange:
    """Back on the roster from now: a new affiliation where he was, his totals back on the boards he left."""
    member = _locked(member)
    if member.is_active:
        raise AlreadyActive()
    since = member.inactive_since
    member.is_active, member.inactive_since = True, None
    db.session.add(Affiliation(member=member, branch_id=member.branch_id, community_id=member.community_id,
                               grid_id=member.grid_id, valid_from=now))
    db.session.flush()
    restored = return_to_boards(member.id, since, now) if since is not None else 0
    count_member(member.branch_id, 1)
    return _record(actor, member, StatusChangeKind.REACTIVATE, (reason or "").strip(), local_today(now), now,
                   None, {"board_rows_restored": restored})


def _locked(member: Member) -> Member:
    """The member re-read under his row lock (a no-op when the use case holds it): the roster import and the
    scheduled-change job plan from rows read earlier, which a concurrent deactivation may have changed since.
    Changes pending on him (a roster row's other columns) are written first, so the re-read keeps them."""
    db.session.flush()
    return lock_subject(SubjectType.MEMBER, member.id)


def _record(actor: Principal, member: Member, kind: StatusChangeKind, reason: str, effective_on: date,
            at: datetime, reason_code: DeactivationReason | None, detail: dict) -> MemberStatusChange:
    change = MemberStatusChange(member_id=member.id, kind=kind, reason_code=reason_code, reason=reason[:200],
                                effective_on=effective_on, effective_at=at, actor_id=actor.user_id)
    db.session.add(change)
    db.session.flush()
    audit(f"member.{kind}", actor=actor, target=member,
          detail={"change_id": change.id, "reason_code": reason_code and str(reason_code), "reason": reason,
                  "effective_on": effective_on.isoformat(), **detail})
    return change


def status_history(actor: Principal, member_id: int) -> list[MemberStatusChange]:
    member = managed_member(actor, member_id, lock=False)
    return list(db.session.scalars(sa.select(MemberStatusChange).where(MemberStatusChange.member_id == member.id)
                                   .order_by(MemberStatusChange.id)))
