"""The dual append-only ledger, its maintained totals, and the claim rows of scheduled jobs.

Invariants (ARCHITECTURE.md, QUALITY.md I1–I9) enforced by the database, not only by Python:
- entries are never updated or deleted (triggers);
- one source fact yields at most one entry per ledger (UNIQUE idempotency_key);
- a reversal points at exactly one entry, each entry is reversed at most once (UNIQUE reverses_id), and a
  reversal is never itself reversed (composite FK to (id, kind) plus a CHECK on the referenced kind);
- points are integer hundredths (exact on every engine).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import Points, UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete


class SubjectType(enum.StrEnum):
    MEMBER = "member"
    ORGANIZATION = "organization"


class LedgerName(enum.StrEnum):
    ASSESSMENT = "assessment"  # 考核积分: feeds grades and HR; reset by policy
    REDEEMABLE = "redeemable"  # 公益积分: spent in the points store; expires by policy
    STANDING = "standing"  # 活跃指数: lifetime assessment scoring minus decay; holds only decay entries


class EntryKind(enum.StrEnum):
    AWARD = "award"
    DEDUCTION = "deduction"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"
    DECAY = "decay"
    EXPIRY = "expiry"
    RESET = "reset"
    REDEMPTION = "redemption"


# Scoring kinds make up what a subject earned or lost in a period; the others settle balances.
SCORING_KINDS = frozenset({EntryKind.AWARD, EntryKind.DEDUCTION, EntryKind.ADJUSTMENT, EntryKind.REVERSAL})
# Settlement kinds are written by the decay, reset and expiry jobs (and the expiry a late refund writes) from the
# policy and the balances: never reversed, a wrong one is corrected by an adjustment. Redemptions are the orders'.
SETTLEMENT_KINDS = frozenset({EntryKind.DECAY, EntryKind.RESET, EntryKind.EXPIRY})


class SourceType(enum.StrEnum):
    CHECKIN = "checkin"
    RECORD = "record"
    REPORT = "report"
    JOB = "job"
    ADMIN = "admin"
    ORDER = "order"  # 积分超市: a redemption and its refund



class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.UniqueConstraint("id", "kind", name="uq_ledger_entries_id_kind"),
        sa.ForeignKeyConstraint(["reverses_id", "reverses_kind"], ["ledger_entries.id", "ledger_entries.kind"],
                                name="fk_ledger_entries_reverses"),
        sa.CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversal_has_target"),
        sa.CheckConstraint("(reverses_id IS NULL) = (reverses_kind IS NULL)", name="reverses_pair"),
        sa.CheckConstraint("reverses_kind IS NULL OR reverses_kind <> 'reversal'", name="no_reversal_of_reversal"),
        # ``points`` rides along (PostgreSQL INCLUDE) so one subject's sums, like the home screen's expiry
        # forecast, are index-only scans rather than a heap page per entry.
        sa.Index("ix_ledger_subject_time", "subject_type", "subject_id", "ledger", "credited_at",
                 postgresql_include=["points"]),
        sa.Index("ix_ledger_credited_at", "credited_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[int] = mapped_column()
    ledger: Mapped[LedgerName] = mapped_column(enum_column(LedgerName, "ledger"))
    kind: Mapped[EntryKind] = mapped_column(enum_column(EntryKind, "kind"))
    item_code: Mapped[str] = mapped_column(sa.String(64))
    units: Mapped[Decimal] = mapped_column(Points, default=Decimal(1))  # hours or times; kept to replay policies
    points: Mapped[Decimal] = mapped_column(Points)  # granted
    points_requested: Mapped[Decimal] = mapped_column(Points)  # asked, before caps
    capped_by: Mapped[str | None] = mapped_column(sa.String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[int | None] = mapped_column()
    source_type: Mapped[SourceType] = mapped_column(enum_column(SourceType, "source_type"))
    source_id: Mapped[str] = mapped_column(sa.String(64))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    idempotency_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    reverses_id: Mapped[int | None] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), unique=True)
    reverses_kind: Mapped[EntryKind | None] = mapped_column(enum_column(EntryKind, "reverses_kind"))
    # An adjustment correcting a past period (2025, 2025-Q4, ...): the annual statement and HR export of that
    # period's year show it as a correction of that year, whenever it was credited.
    corrects_period: Mapped[str | None] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


forbid_update_and_delete(LedgerEntry.__table__)

ALL_TIME = "all"


class PointTotal(db.Model):
    """A maintained total per (subject, ledger, period): rebuilt from the ledger by ``flask points rebuild``.

    ``earned``/``deducted`` sum the positive/negative scoring entries; ``settled`` sums decay, expiry,
    reset and redemption. The standing row (period ``all``) also mirrors assessment scoring entries.
    """

    __tablename__ = "point_totals"
    __table_args__ = (
        sa.Index("ix_point_totals_board", "ledger", "period", "subject_type"),
    )

    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"), primary_key=True)
    subject_id: Mapped[int] = mapped_column(primary_key=True)
    ledger: Mapped[LedgerName] = mapped_column(enum_column(LedgerName, "ledger"), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    earned: Mapped[Decimal] = mapped_column(Points, default=Decimal(0))
    deducted: Mapped[Decimal] = mapped_column(Points, default=Decimal(0))
    settled: Mapped[Decimal] = mapped_column(Points, default=Decimal(0))

    @property
    def net(self) -> Decimal:
        return self.earned + self.deducted

    @property
    def balance(self) -> Decimal:
        return self.earned + self.deducted + self.settled


class JobRunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(db.Model):
    """The claim row of one (job, period): a second scheduler that finds it does nothing."""

    __tablename__ = "job_runs"
    __table_args__ = (sa.UniqueConstraint("job_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(64))
    period: Mapped[str] = mapped_column(sa.String(12))
    status: Mapped[JobRunStatus] = mapped_column(enum_column(JobRunStatus, "status"))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=1)
    result: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
