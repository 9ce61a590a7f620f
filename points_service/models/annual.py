"""The frozen annual settlement (年度结算): one settlement row per year and one statement per member and
per organization, which is what HR pulls.

Both tables are append-only (database triggers): a statement never changes after settlement. Later
corrections are ledger adjustments or reversals, shown next to the statement, never written into it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import Points, UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete
from points_service.models.ledger import SubjectType

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class AnnualSettlement(db.Model):
    __tablename__ = "annual_settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="settled")
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)  # end of the year (exclusive), Asia/Shanghai
    policy_version: Mapped[int] = mapped_column()  # the version in force just before the cutoff
    settled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: the scheduled job
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    member_count: Mapped[int] = mapped_column(default=0)
    organization_count: Mapped[int] = mapped_column(default=0)
    checksum: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the canonical JSON lines of the statements


class AnnualStatement(db.Model):
    """One subject's frozen year: total, breakdown, service, ranks, stars and grade with its reasons."""

    __tablename__ = "annual_statements"
    __table_args__ = (
        sa.UniqueConstraint("year", "subject_type", "subject_id"),
        # Exports walk a year's statements in ranking order by keyset on ``position``.
        sa.Index("ix_annual_statements_order", "year", "subject_type", "position"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key to the settlement: its row (holding the checksum of these) is written last, in the
    # same transaction, and the table is append-only.
    year: Mapped[int] = mapped_column()
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"))
    subject_id: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column()  # 1..N city-wide in the documented tie order (unique per type)
    # Where the subject belonged at the cutoff (members: branch; organizations: itself).
    department_id: Mapped[int | None] = mapped_column()
    branch_id: Mapped[int | None] = mapped_column()
    community_id: Mapped[int | None] = mapped_column()
    org_path: Mapped[str] = mapped_column(sa.String(255), default="")
    total: Mapped[Decimal] = mapped_column(Points)  # assessment net of the year
    by_item: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{item_code, name, points, count}]
    activities: Mapped[int] = mapped_column(default=0)
    hours: Mapped[Decimal] = mapped_column(Points, default=Decimal(0))
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last scoring entry of the year
    rank_city: Mapped[int] = mapped_column()
    rank_group: Mapped[int | None] = mapped_column()  # within the department (members only)
    stars: Mapped[int] = mapped_column(default=0)
    grade_by_score: Mapped[str] = mapped_column(sa.String(16))
    grade: Mapped[str] = mapped_column(sa.String(16))
    grade_reasons: Mapped[list] = mapped_column(sa.JSON, default=list)  # [{code, message}]


forbid_update_and_delete(AnnualSettlement.__table__)
forbid_update_and_delete(AnnualStatement.__table__)
