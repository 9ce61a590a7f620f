"""Writing the audit trail. Helpers only add to the session: the calling use case commits."""

from __future__ import annotations

from points_service.db import db
from points_service.models import AuditEntry


def audit(action: str, *, actor=None, target=None, target_type: str | None = None, target_id=None,
          result: str = "ok", detail: dict | None = None, request_id: str | None = None) -> AuditEntry:
    """Add an audit row. ``actor`` is a Principal (or None for anonymous attempts); ``target`` a model."""
    if target is not None:
        target_type = target_type or target.__tablename__
        target_id = target_id if target_id is not None else getattr(target, "id", None)
    entry = AuditEntry(
        actor_id=getattr(actor, "user_id", None),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        result=result,
        request_id=request_id or getattr(actor, "request_id", None),
        detail=detail or {},
    )
    db.session.add(entry)
    return entry
