"""Selections: quarterly 业务之星 runs with every candidate's facts and reasons, their objections, the
流动红旗 awards, and the working-day calendar that times the publicity window (公示).

Frozen by the database, not only by Python:
- a finalized (or withdrawn) star run, and every candidate row of such a run, refuse UPDATE and DELETE;
- a decided objection refuses UPDATE; objections are never deleted;
- red-flag awards and their candidate rows are append-only (an award is frozen when it is written).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import Points, UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete

CLOSED_RUN_STATUSES = ("finalized", "withdrawn")


class StarRunStatus(enum.StrEnum):
    PROPOSED = "proposed"  # computed; admins review it
    PUBLISHED = "published"  # in publicity (公示): objections may be raised until publicity ends
    FINALIZED = "finalized"  # frozen
    WITHDRAWN = "withdrawn"  # replaced by a fresh proposal before publication; kept for the record


class StarRun(db.Model):
    __tablename__ = "star_runs"
    __table_args__ = (
        # One live run per quarter: a withdrawn proposal may be replaced, nothing else.
        sa.Index("uq_star_runs_live", "period", unique=True,
                 postgresql_where=sa.text("status <> 'withdrawn'"), sqlite_where=sa.text("status <> 'withdrawn'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(12))  # 2026-Q3
    scope_type: Mapped[str] = mapped_column(sa.String(16))  # community | street | organization
    status: Mapped[StarRunStatus] = mapped_column(enum_column(StarRunStatus, "status"),
                                                  default=StarRunStatus.PROPOSED)
    policy_version: Mapped[int | None] = mapped_column()
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the quarter's end: facts are as of this instant
    checksum: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the canonical candidate rows
    candidate_count: Mapped[int] = mapped_column(default=0)
    eligible_count: Mapped[int] = mapped_column(default=0)
    winner_count: Mapped[int] = mapped_column(default=0)
    publicity_ends_on: Mapped[date | None] = mapped_column(sa.Date)  # last local day of the publicity window
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: the scheduled job
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StarCandidate(db.Model):
    """One member of a run, with the facts the selection used and why he is (not) selected."""

    __tablename__ = "star_candidates"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "member_id"),
        sa.Index("ix_star_candidates_rank", "run_id", "scope_id", "position"),
        sa.Index("ix_star_candidates_winners", "run_id", "winner"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("star_runs.id"))
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    community_id: Mapped[int] = mapped_column()  # the member's community at the cutoff (for scoped views)
    scope_id: Mapped[int] = mapped_column()  # community, street or department id, per the run's scope_type
    points: Mapped[Decimal] = mapped_column(Points)  # assessment net of the quarter
    activities: Mapped[int] = mapped_column()
    hours: Mapped[Decimal] = mapped_column(Points)
    micro_wishes: Mapped[int] = mapped_column()
    disqualifying: Mapped[int] = mapped_column()
    reported: Mapped[bool] = mapped_column()
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    eligible: Mapped[bool] = mapped_column()
    position: Mapped[int | None] = mapped_column()  # 1-based among the eligible of the scope
    winner: Mapped[bool] = mapped_column(default=False)
    reasons: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{"code", "message"}]


class ObjectionStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class StarObjection(db.Model):
    __tablename__ = "star_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("star_runs.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[ObjectionStatus] = mapped_column(enum_column(ObjectionStatus, "status"),
                                                    default=ObjectionStatus.OPEN)
    raised_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(sa.String(200), default="")


class RedFlagKind(enum.StrEnum):
    FIRST = "first"  # 首次: nobody held the flag of this scope in the previous period
    RETAINED = "retained"  # 保旗: last period's holder won again
    CAPTURED = "captured"  # 夺旗: another organization took it from last period's holder


RED_FLAG_KIND_NAMES = {RedFlagKind.FIRST: "首次", RedFlagKind.RETAINED: "保旗", RedFlagKind.CAPTURED: "夺旗"}


class RedFlagAward(db.Model):
    """The 流动红旗 of one scope for one period: a holder, or none with the reason (append-only)."""

    __tablename__ = "red_flag_awards"
    __table_args__ = (sa.UniqueConstraint("period", "scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(12))
    scope_key: Mapped[str] = mapped_column(sa.String(32))  # "city" or "district:{region id}"
    scope_region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    kind: Mapped[RedFlagKind | None] = mapped_column(enum_column(RedFlagKind, "kind"))
    previous_holder_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    score: Mapped[Decimal | None] = mapped_column(Points)  # per-capita assessment net of the holder's members
    report_rate_bp: Mapped[int | None] = mapped_column()  # holder's member report rate in 1/10000
    unexcused_absences: Mapped[int | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(200), default="")  # why nobody holds it
    candidate_count: Mapped[int] = mapped_column(default=0)
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_version: Mapped[int | None] = mapped_column()
    checksum: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RedFlagCandidate(db.Model):
    __tablename__ = "red_flag_candidates"
    __table_args__ = (sa.UniqueConstraint("award_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("red_flag_awards.id"), index=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    members: Mapped[int] = mapped_column()
    reported: Mapped[int] = mapped_column()
    report_rate_bp: Mapped[int] = mapped_column()
    unexcused_absences: Mapped[int] = mapped_column()
    score: Mapped[Decimal] = mapped_column(Points)
    eligible: Mapped[bool] = mapped_column()
    position: Mapped[int | None] = mapped_column()
    reasons: Mapped[list] = mapped_column(sa.JSON, default=list)


class CalendarDay(db.Model):
    """An admin-maintained exception to "Monday to Friday are working days": a holiday on a weekday
    (working = false) or a 调休 weekend working day (working = true)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    working: Mapped[bool] = mapped_column()
    name: Mapped[str] = mapped_column(sa.String(50), default="")
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ------------------------------------------------------------------------------------ database guards

def _frozen_ddl(table: str, dialect: str, when_sql: str, message: str, operations: tuple[str, ...]) -> list[str]:
    """Triggers refusing ``operations`` on rows for which ``when_sql`` (over OLD) holds."""
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table}_frozen() RETURNS trigger AS $$
            BEGIN IF {when_sql} THEN RAISE EXCEPTION '{message}'; END IF;
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql""",
            f"""CREATE TRIGGER {table}_frozen BEFORE {' OR '.join(operations)} ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_frozen()""",
        ]
    if dialect == "sqlite":
        return [
            f"""CREATE TRIGGER {table}_frozen_{op.lower()} BEFORE {op} ON {table} WHEN {when_sql}
            BEGIN SELECT RAISE(ABORT, '{message}'); END"""
            for op in operations
        ]
    raise NotImplementedError(f"frozen guard not written for {dialect}")


FROZEN_GUARDS = {
    "star_runs": ("OLD.status IN ('finalized', 'withdrawn')", "star_runs: a closed run is frozen",
                  ("UPDATE", "DELETE")),
    "star_candidates": ("(SELECT status FROM star_runs WHERE id = OLD.run_id) IN ('finalized', 'withdrawn')",
                        "star_candidates: the run is closed", ("UPDATE", "DELETE")),
    "star_objections": ("OLD.status <> 'open' OR TG_OP = 'DELETE'", "star_objections: decided or deleted",
                        ("UPDATE", "DELETE")),
}


def selection_guard_ddl(table: str, dialect: str) -> list[str]:
    """The guard statements of one table, for create_all and for the Alembic migration alike."""
    when_sql, message, operations = FROZEN_GUARDS[table]
    if dialect == "sqlite" and table == "star_objections":
        return [  # SQLite has no TG_OP: a DELETE trigger that always fires, an UPDATE one on decided rows
            *_frozen_ddl(table, dialect, "OLD.status <> 'open'", message, ("UPDATE",)),
            *_frozen_ddl(table, dialect, "1", message, ("DELETE",)),
        ]
    return _frozen_ddl(table, dialect, when_sql, message, operations)


def _guard(table: sa.Table) -> None:
    @sa.event.listens_for(table, "after_create")
    def _install(target, connection, **_kw):
        for statement in selection_guard_ddl(target.name, connection.dialect.name):
            connection.exec_driver_sql(statement)


for _model in (StarRun, StarCandidate, StarObjection):
    _guard(_model.__table__)
forbid_update_and_delete(RedFlagAward.__table__)
forbid_update_and_delete(RedFlagCandidate.__table__)


class AwardType(enum.StrEnum):
    STAR = "star"  # a winner of a published or finalized 业务之星 run (its star_candidates row)
    RED_FLAG = "red_flag"  # a 流动红旗 award with a holder


class AwardWithdrawal(db.Model):
    """An award withdrawn by an admin, with its reason: the award rows stay as they were (frozen) and lists
    show them as withdrawn. One withdrawal per award (UNIQUE); append-only."""

    __tablename__ = "award_withdrawals"
    __table_args__ = (sa.UniqueConstraint("award_type", "award_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    award_type: Mapped[AwardType] = mapped_column(enum_column(AwardType, "award_type"))
    award_id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"))
    reason: Mapped[str] = mapped_column(sa.String(200))
    reversed_entries: Mapped[int] = mapped_column(default=0)  # ledger entries of the award reversed with it
    withdrawn_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


forbid_update_and_delete(AwardWithdrawal.__table__)
