"""Published versions of the points policy. Append-only: a change of policy is a new version, never an edit."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import UTCDateTime, db, utcnow
from points_service.models.append_only import forbid_update_and_delete


class PolicyVersion(db.Model):
    """One version of the policy. ``document`` is the fully expanded canonical document (defaults filled
    in), so a later change of defaults in code can never change what an old version meant;
    ``checksum`` is the SHA-256 of its canonical JSON (sorted keys, compact separators, UTF-8)."""

    __tablename__ = "policy_versions"
    __table_args__ = (sa.CheckConstraint("version >= 1", name="version_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    document: Mapped[dict] = mapped_column(sa.JSON)
    checksum: Mapped[str] = mapped_column(sa.String(64))
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.String(200), default="")


forbid_update_and_delete(PolicyVersion.__table__)
