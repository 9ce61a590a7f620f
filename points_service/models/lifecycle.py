"""A member's status history: every deactivation (离职/退休/组织关系转出) and reactivation, dated.

The member row carries the current state (``is_active`` and ``inactive_since``, the instant the current
deactivation took effect) so that boards, sign-in and the ledger decide without a join; each change is also an
append-only ``MemberStatusChange`` with its reason, effective date and actor, so history is never rewritten.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete


class StatusChangeKind(enum.StrEnum):
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"


class DeactivationReason(enum.StrEnum):
    RESIGNED = "resigned"  # 离职
    RETIRED = "retired"  # 退休
    TRANSFERRED_OUT = "transferred_out"  # 组织关系转出


DEACTIVATION_REASON_NAMES = {
    DeactivationReason.RESIGNED: "离职",
    DeactivationReason.RETIRED: "退休",
    DeactivationReason.TRANSFERRED_OUT: "组织关系转出",
}


class MemberStatusChange(db.Model):
    __tablename__ = "member_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    kind: Mapped[StatusChangeKind] = mapped_column(enum_column(StatusChangeKind, "kind"))
    reason_code: Mapped[DeactivationReason | None] = mapped_column(enum_column(DeactivationReason, "reason_code"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    effective_on: Mapped[date] = mapped_column(sa.Date)  # the local (Asia/Shanghai) date
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)  # that date's local midnight, in UTC
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


forbid_update_and_delete(MemberStatusChange.__table__)


class ScheduledChangeKind(enum.StrEnum):
    DEACTIVATE = "deactivate"
    TRANSFER = "transfer"


class ScheduledChangeStatus(enum.StrEnum):
    SCHEDULED = "scheduled"  # waiting for its effective date
    APPLIED = "applied"  # the ``member_changes`` job applied it on that date
    CANCELLED = "cancelled"  # an admin cancelled it before
    FAILED = "failed"  # it could no longer apply (e.g. the member was deactivated meanwhile); see ``outcome``


class ScheduledMemberChange(db.Model):
    """A deactivation or transfer dated in the future: stored here, applied by a job on its date.

    At most one change per member waits at a time (a partial unique index)."""

    __tablename__ = "scheduled_member_changes"
    __table_args__ = (
        sa.Index("uq_scheduled_member_changes_waiting", "member_id", unique=True,
                 sqlite_where=sa.text("status = 'scheduled'"), postgresql_where=sa.text("status = 'scheduled'")),
        sa.Index("ix_scheduled_member_changes_due", "status", "effective_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    kind: Mapped[ScheduledChangeKind] = mapped_column(enum_column(ScheduledChangeKind, "kind"))
    status: Mapped[ScheduledChangeStatus] = mapped_column(enum_column(ScheduledChangeStatus, "status"),
                                                          default=ScheduledChangeStatus.SCHEDULED)
    reason_code: Mapped[DeactivationReason | None] = mapped_column(enum_column(DeactivationReason, "reason_code"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    effective_on: Mapped[date] = mapped_column(sa.Date)  # a local (Asia/Shanghai) date after the day it was made
    branch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))  # transfer targets
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # applied, cancelled or failed
    outcome: Mapped[str] = mapped_column(sa.String(200), default="")
