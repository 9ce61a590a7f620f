"""Leaderboards: one maintained row per (board, subject) plus rank histograms for the large member scopes.

A board is ``"{ledger}:{period}"`` — ``assessment:2026-Q3``, ``assessment:2026-07``, ``assessment:2026-H2``,
``assessment:2026`` (score = ``PointTotal.net``) and ``standing:all`` (score = the standing balance). Rows
are bumped in the ledger entry's transaction (``domain/boards/maintain.py``), so a page or a rank never
aggregates the ledger. Scores are integer hundredths, like every points column.

- ``board_scores``: the subject's score, ``reached_at`` (the latest credited_at of an entry that changed
  the score: the tie order), and the scope columns copied from the member (or organization) when the row
  was made; open boards follow transfers, closed ones keep the scopes of their period's end.
  Organization rows also carry ``member_points`` (Σ of their members' scores on the board) and
  ``participants`` (members with a score > 0) for the per-capita and participation measures.
- ``board_buckets`` / ``board_fine``: per large member scope (``city``, ``district:{id}``, ``street:{id}``,
  ``department:{id}``) how many members hold each 1-point bucket (``floor(score / 100)``) and each exact
  score: "my rank" is 1 + a sum over the buckets above mine + a sum over the exact scores above mine
  inside my bucket — two short index range scans however big the city is.
- ``board_org_members``: each organization's active members now (the per-capita denominator).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import UTCDateTime, db, enum_column
from points_service.models.ledger import SubjectType

SCOPE_COLUMNS = ("district_id", "street_id", "community_id", "grid_id", "branch_id", "department_id")


def _order_index(name: str, *scope: str) -> sa.Index:
    return sa.Index(name, "board", "subject_type", *scope, sa.text("score DESC"), "reached_at", "subject_id")


class BoardScore(db.Model):
    __tablename__ = "board_scores"
    __table_args__ = (
        _order_index("ix_board_scores_rank"),
        _order_index("ix_board_scores_district", "district_id"),
        _order_index("ix_board_scores_street", "street_id"),
        _order_index("ix_board_scores_community", "community_id"),
        _order_index("ix_board_scores_grid", "grid_id"),
        _order_index("ix_board_scores_branch", "branch_id"),
        _order_index("ix_board_scores_department", "department_id"),
        sa.Index("ix_board_scores_subject", "subject_type", "subject_id"),
    )

    board: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    subject_type: Mapped[SubjectType] = mapped_column(enum_column(SubjectType, "subject_type"), primary_key=True)
    subject_id: Mapped[int] = mapped_column(primary_key=True)
    score: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # hundredths
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    district_id: Mapped[int | None] = mapped_column()
    street_id: Mapped[int | None] = mapped_column()
    community_id: Mapped[int | None] = mapped_column()
    grid_id: Mapped[int | None] = mapped_column()
    branch_id: Mapped[int | None] = mapped_column()
    department_id: Mapped[int | None] = mapped_column()
    member_points: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # organizations only (hundredths)
    participants: Mapped[int] = mapped_column(default=0)  # organizations only


class BoardBucket(db.Model):
    __tablename__ = "board_buckets"

    board: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    scope_key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class BoardFine(db.Model):
    __tablename__ = "board_fine"

    board: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    scope_key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    score: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class BoardOrgMembers(db.Model):
    __tablename__ = "board_org_members"

    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), primary_key=True)
    members: Mapped[int] = mapped_column(default=0)
