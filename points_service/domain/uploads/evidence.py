"""Evidence photos: checked with the shared image checks (``domain.images``), stored under a random name in the
instance folder, and recorded with their owner. A link to one (``…/uploads/evidence/<name>``) may go into a
self-report's evidence only from the member who uploaded it."""

from __future__ import annotations

import posixpath
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import current_app

from points_service.db import db, utcnow
from points_service.domain.access import Principal
from points_service.domain.errors import Forbidden, RateLimited, ValidationFailed
from points_service.domain.images import MEDIA_TYPES, STORED_NAME, ImageLimits, check_image
from points_service.models import EvidenceUpload

# A phone's compressed photo is well under this; the request body limit (MAX_CONTENT_LENGTH, 5 MB) is above it.
LIMITS = ImageLimits(max_bytes=4 * 1024 * 1024, min_side=64, max_side=8192, field="file")
DAILY_LIMIT = 60  # uploads per account in 24 hours: enough for a busy day, not enough to fill a disk
NAME = re.compile(rf"^{STORED_NAME}$")
LINK_PATH = re.compile(rf"/uploads/evidence/({STORED_NAME})$")


def folder() -> Path:
    path = Path(current_app.instance_path) / "evidence-uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_evidence(actor: Principal, content: bytes, *, now: datetime | None = None) -> EvidenceUpload:
    """Check an uploaded photo and keep it as the member's; 422 ``picture_invalid`` for a bad file."""
    if actor is None or actor.member_id is None:
        raise Forbidden("仅党员本人可以上传照片", code="member_required")
    now = now or utcnow()
    recent = db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceUpload).where(
        EvidenceUpload.user_id == actor.user_id, EvidenceUpload.created_at > now - timedelta(days=1)))
    if recent >= DAILY_LIMIT:
        raise RateLimited(f"24 小时内最多上传 {DAILY_LIMIT} 张照片，请稍后再试", retry_after=3600)
    suffix = check_image(content, LIMITS)
    upload = EvidenceUpload(name=f"{secrets.token_urlsafe(24)}.{suffix}", user_id=actor.user_id,
                            member_id=actor.member_id, media_type=MEDIA_TYPES[suffix], size_bytes=len(content),
                            created_at=now)
    path = folder() / upload.name
    path.write_bytes(content)
    try:
        db.session.add(upload)
        db.session.commit()
    except Exception:
        db.session.rollback()
        path.unlink(missing_ok=True)
        raise
    return upload


def evidence_file(name: str) -> tuple[Path, str] | None:
    """The stored file and its media type behind an upload's name, or None for anything not ours."""
    if not NAME.match(name or ""):
        return None
    path = folder() / name
    return (path, MEDIA_TYPES[path.suffix.lstrip(".")]) if path.is_file() else None


def upload_name(link: str) -> str | None:
    """The stored name an evidence link points at when it is a link to an upload of this service, however it is
    spelled: its path is read as a browser and the service resolve it (backslashes as slashes, percent-escapes
    decoded, ``.`` and ``..`` segments applied), so ``%4C…``, ``./`` or ``x/../`` name the same upload."""
    path = posixpath.normpath(unquote(urlsplit(link.replace("\\", "/")).path) or "/")
    match = LINK_PATH.search(path)
    return match.group(1) if match else None


def check_evidence_owner(actor: Principal, links: list[str] | tuple[str, ...]) -> None:
    """Links to uploads must be the actor's own uploads; 422 ``validation_failed`` on ``evidence`` otherwise."""
    cited = {link: upload_name(link) for link in links}
    names = {name for name in cited.values() if name}
    if not names:
        return
    own = set(db.session.scalars(sa.select(EvidenceUpload.name).where(
        EvidenceUpload.name.in_(names), EvidenceUpload.user_id == actor.user_id)))
    foreign = [index for index, link in enumerate(links, start=1) if cited[link] and cited[link] not in own]
    if foreign:
        numbers = "、".join(str(index) for index in foreign)
        raise ValidationFailed({"evidence": [f"第 {numbers} 项照片不是您本人上传的，请重新上传"]})
