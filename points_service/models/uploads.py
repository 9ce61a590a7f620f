"""Photos a member uploaded as evidence for his self-reports: the stored file's random name, its owner (the
account that uploaded it; only its owner may cite it as evidence), its checked type and size."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from points_service.db import UTCDateTime, db, utcnow


class EvidenceUpload(db.Model):
    __tablename__ = "evidence_uploads"
    __table_args__ = (
        sa.CheckConstraint("size_bytes > 0", name="size_positive"),
        sa.Index("ix_evidence_uploads_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60), unique=True)  # the stored file's name, e.g. "AbC…xyz.jpg"
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    media_type: Mapped[str] = mapped_column(sa.String(20))
    size_bytes: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
