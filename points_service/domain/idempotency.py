"""Idempotency-Key bookkeeping (IETF draft semantics), per user.

Same key and same request → the first response, once; same key, other request → 422; same key while
the first is still running → 409. Only successful responses are kept: a failure (before or during
execution) releases the key, and the retry runs again — safe, because the writes themselves are
idempotent in the database (unique check-ins, unique ledger keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain.errors import Conflict, ServiceError
from points_service.models import IdempotencyRecord, IdempotencyState


class KeyReused(ServiceError):
    status, code, message = 422, "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求"


class KeyInFlight(Conflict):
    code, message = "idempotency_in_flight", "相同的请求正在处理中，请稍后重试"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


def claim_key(user_id: int, key: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Take the key for this request (committed at once), or say what the first request got."""
    record = IdempotencyRecord(user_id=user_id, key=key, fingerprint=fingerprint, state=IdempotencyState.IN_FLIGHT)
    try:
        db.session.add(record)
        db.session.commit()
        return record
    except IntegrityError:
        db.session.rollback()
    existing = db.session.scalar(sa.select(IdempotencyRecord).where(
        IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
    if existing is None:  # released between our insert and our read: the caller may retry
        raise KeyInFlight()
    if existing.fingerprint != fingerprint:
        raise KeyReused()
    if existing.state == IdempotencyState.IN_FLIGHT:
        raise KeyInFlight()
    return Replay(existing.response_status, existing.response_body)


def complete_key(record_id: int, status: int, body: dict) -> None:
    db.session.execute(sa.update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(
        state=IdempotencyState.COMPLETED, response_status=status, response_body=body, created_at=utcnow()))
    db.session.commit()


def release_key(record_id: int) -> None:
    db.session.rollback()
    db.session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()
