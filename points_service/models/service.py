"""双报到 and service: reports, activities with sign-ups and verified check-ins, self-reported records,
and the approvals that confirm them.

Guards live in the database: one check-in per member and activity, one sign-up per member and
activity, one live report per subject and half year, and state changes done as compare-and-set
UPDATEs so that two deciders cannot both win (SQLite ignores FOR UPDATE).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from points_service.db import Points, UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete
from points_service.models.ledger import SubjectType
from points_service.models.people import Member
from points_service.models.structure import Region

# What is waiting for a decision is a sliver of the reports and records ever made; the home screen counts a
# member's. Only those rows are indexed for it (the index stays small and in memory, no heap visits), and the
# query filters with this same text, so the planner can prove the predicate even in a prepared statement.
PENDING = sa.text("status = 'pending'")


def pending_subject_index(table: str) -> sa.Index:
    return sa.Index(f"ix_{table}_pending_subject", "subject_type", "subject_id", postgresql_where=PENDING,
                    sqlite_where=PENDING)


class ReportStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Report(db.Model):
    """报到: a member to his residence community, or a department organization to its paired community
    (with the co-building agreement's three lists). Re-reporting happens per half year (``half``)."""

    __tablename__ = "reports"
    __table_args__ = (
        # At most one live (pending or confirmed) report per subject and half year.
        sa.Index("uq_reports_live", "subject_type", "subject_id", "half", unique=True,
                 postgresql_where=sa.text("status <> 'rejected'"), sqlite_where=sa.text("status <> 'rejected'")),
        sa.Index("ix_reports_queue", "community_id", "status"),
        pending_subject_index("reports"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[int] = mapped_column(index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    half: Mapped[str] = mapped_column(sa.String(8))  # e.g. 2026-H2, in Asia/Shanghai
    status: Mapped[ReportStatus] = mapped_column(enum_column(ReportStatus, "status"), default=ReportStatus.PENDING)
    resources: Mapped[list] = mapped_column(sa.JSON, default=list)  # 资源清单 (organizations)
    needs: Mapped[list] = mapped_column(sa.JSON, default=list)  # 需求清单
    projects: Mapped[list] = mapped_column(sa.JSON, default=list)  # 项目清单
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))  # assigned on confirmation
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")

    community: Mapped[Region] = relationship(foreign_keys=[community_id])


class ActivityStatus(enum.StrEnum):
    PROPOSED = "proposed"  # by a branch/department: waits for its secretary, then the community
    PUBLISHED = "published"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ProposalStep(enum.StrEnum):
    """Which approval a proposed activity waits for; meaningless once it is no longer proposed."""

    ORGANIZATION = "organization"  # first the proposing organization's secretary / org admin
    COMMUNITY = "community"  # then the host community's admin accepts (publishing it)


class Activity(db.Model):
    __tablename__ = "activities"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="time_window"),
        sa.CheckConstraint("radius_m > 0 AND radius_m <= 5000", name="radius_range"),
        sa.CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        sa.Index("ix_activities_calendar", "community_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    title: Mapped[str] = mapped_column(sa.String(100))
    item_code: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The venue, not a person: gcj02 coordinates as the mini-program reports them.
    venue_lat: Mapped[float] = mapped_column(sa.Float)
    venue_lng: Mapped[float] = mapped_column(sa.Float)
    radius_m: Mapped[int] = mapped_column()
    capacity: Mapped[int | None] = mapped_column()
    status: Mapped[ActivityStatus] = mapped_column(enum_column(ActivityStatus, "status"),
                                                   default=ActivityStatus.PUBLISHED)
    proposed_by_org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    approval_step: Mapped[ProposalStep] = mapped_column(enum_column(ProposalStep, "approval_step"),
                                                       default=ProposalStep.ORGANIZATION)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checkin_secret: Mapped[str] = mapped_column(sa.String(64))  # per-activity HMAC key for rotating tokens

    community: Mapped[Region] = relationship()
    # Not a column: whether the caller's member has a live sign-up, loaded only where a query asks for it
    # (domain/activities/signups.with_signed_up); None otherwise.
    signed_up: Mapped[bool | None] = query_expression()


class SignupStatus(enum.StrEnum):
    SIGNED_UP = "signed_up"
    WITHDRAWN = "withdrawn"


class Signup(db.Model):
    __tablename__ = "signups"
    __table_args__ = (sa.UniqueConstraint("activity_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    status: Mapped[SignupStatus] = mapped_column(enum_column(SignupStatus, "status"), default=SignupStatus.SIGNED_UP)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckinStatus(enum.StrEnum):
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"  # hours credited
    REVIEW = "review"  # suspicious (poor accuracy, impossible travel): a community admin decides
    NO_CHECKOUT = "no_checkout"  # the activity ended without a check-out: the policy's rule applied
    REJECTED = "rejected"  # a community admin refused a check-in under review: nothing is credited


class Checkin(db.Model):
    """One per member and activity (UNIQUE). Raw coordinates are never stored: distance and verdict only."""

    __tablename__ = "checkins"
    __table_args__ = (sa.UniqueConstraint("activity_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("activities.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    status: Mapped[CheckinStatus] = mapped_column(enum_column(CheckinStatus, "status"),
                                                  default=CheckinStatus.CHECKED_IN)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checkin_distance_m: Mapped[int] = mapped_column()
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checkout_distance_m: Mapped[int | None] = mapped_column()
    hours: Mapped[Decimal | None] = mapped_column(Points)
    review_reason: Mapped[str] = mapped_column(sa.String(200), default="")

    activity: Mapped[Activity] = relationship()
    member: Mapped[Member] = relationship()

    @property
    def member_name(self) -> str:
        return self.member.name


class RecordStatus(enum.StrEnum):
    PENDING = "pending"
    NEEDS_INFO = "needs_info"  # returned to the submitter for more evidence; resubmitting makes it pending
    APPROVED = "approved"
    REJECTED = "rejected"


TERMINAL_RECORD_STATUSES = frozenset({RecordStatus.APPROVED, RecordStatus.REJECTED})


class Record(db.Model):
    """A self-reported service (虚拟上报) by a member, or an organization item (project done, problem
    solved, resources invested). Points are credited only on approval."""

    __tablename__ = "records"
    __table_args__ = (sa.Index("ix_records_queue", "route_role", "route_scope_id", "status"),
                      pending_subject_index("records"),
                      # A submission retried with its Idempotency-Key is the record it already wrote.
                      sa.Index("uq_records_submitter_request", "submitted_by_id", "request_key", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[int] = mapped_column(index=True)
    item_code: Mapped[str] = mapped_column(sa.String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    units: Mapped[Decimal] = mapped_column(Points, default=Decimal(1))  # hours for hourly items
    description: Mapped[str] = mapped_column(sa.String(500))
    evidence: Mapped[list] = mapped_column(sa.JSON, default=list)  # https URLs
    status: Mapped[RecordStatus] = mapped_column(enum_column(RecordStatus, "status"), default=RecordStatus.PENDING)
    # Who decides, resolved at submission from the policy item: a role and the scope node it applies to.
    route_role: Mapped[str] = mapped_column(sa.String(32))
    route_scope_id: Mapped[int | None] = mapped_column()
    submitted_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_comment: Mapped[str] = mapped_column(sa.String(200), default="")
    request_key: Mapped[str | None] = mapped_column(sa.String(64))  # the submission's Idempotency-Key

    # Not a column: the item's name under the policy a use case just applied to this record, so that its
    # answer need not read the policy again (``api.fields.ItemName``); None on a loaded record.
    item_name = None


@sa.event.listens_for(Record, "refresh")
def _forget_item_name(record: Record, _context, _attributes) -> None:
    """A record read afresh (``populate_existing``) answers with the policy's name of its item again."""
    record.__dict__.pop("item_name", None)


class ApprovalEvent(db.Model):
    """The audit row of one state transition of a report, record or proposed activity (append-only)."""

    __tablename__ = "approval_events"
    __table_args__ = (sa.Index("ix_approval_events_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target_type: Mapped[str] = mapped_column(sa.String(16))  # report | record | activity | checkin
    target_id: Mapped[int] = mapped_column()
    from_status: Mapped[str] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    comment: Mapped[str] = mapped_column(sa.String(200), default="")


forbid_update_and_delete(ApprovalEvent.__table__)


class IdempotencyState(enum.StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


class IdempotencyRecord(db.Model):
    """Idempotency-Key per user: the first response is replayed for the same key and body."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(64))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # sha256 of method, path and body
    state: Mapped[IdempotencyState] = mapped_column(enum_column(IdempotencyState, "state"))
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[dict | None] = mapped_column(sa.JSON)
    # Indexed for the retention job, whose batches find the old keys by age rather than walking the rest of the
    # table by id. Not (state, created_at): completing a key changes only its state, which then stays a HOT update.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
