"""Members and their affiliations.

A member's current branch, community and grid are kept on the row for fast scoping; every change is
also an ``Affiliation`` with effective dates, so a transfer never rewrites history.
Phones are kept only as a keyed hash (to bind and to match re-imports) and a masked form (PIPL
minimization): no one, not even an admin, can read a full phone number back out of the database.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from points_service.db import UTCDateTime, db, utcnow
from points_service.models.structure import Organization, Region

# The two account tables by name only: models/accounts imports this module, so its classes cannot be used here.
_users = sa.table("users", sa.column("id"), sa.column("member_id"))
_identities = sa.table("wechat_identities", sa.column("user_id"))


class Member(db.Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    phone_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    phone_masked: Mapped[str] = mapped_column(sa.String(16))
    branch_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"), index=True)
    show_on_boards: Mapped[bool] = mapped_column(default=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # When the current deactivation took effect (None while active): boards of periods ending later drop him.
    inactive_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Whether a WeChat identity is bound to his account (staff see it; the openid never leaves the server).
    # Deferred, so the many reads of members that do not show it never pay for it: the member list loads it in
    # its one statement (``undefer``), a single member with one more; both through unique indexes.
    wechat_bound: Mapped[bool] = column_property(
        sa.exists().where(_identities.c.user_id == _users.c.id, _users.c.member_id == id), deferred=True)

    branch: Mapped[Organization] = relationship(foreign_keys=[branch_id])
    community: Mapped[Region] = relationship(foreign_keys=[community_id])
    grid: Mapped[Region | None] = relationship(foreign_keys=[grid_id])
    affiliations: Mapped[list[Affiliation]] = relationship(
        back_populates="member", order_by="Affiliation.valid_from"
    )


class Affiliation(db.Model):
    """Where a member belonged during [valid_from, valid_to); valid_to is NULL for the current one."""

    __tablename__ = "affiliations"
    __table_args__ = (
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    branch_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"))
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("regions.id"))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)

    member: Mapped[Member] = relationship(back_populates="affiliations")
    branch: Mapped[Organization] = relationship(foreign_keys=[branch_id])
    community: Mapped[Region] = relationship(foreign_keys=[community_id])
    grid: Mapped[Region | None] = relationship(foreign_keys=[grid_id])
