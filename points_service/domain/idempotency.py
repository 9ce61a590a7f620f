"""Idempotency-Key bookkeeping (IETF draft semantics), per user.

Same key and same request → the first response, once; same key, other request → 422; same key while
the first is still running → 409. Only successful responses are kept: a failure (before or during
execution) releases the key, and the retry runs again — safe, because the writes themselves are
idempotent in the database (unique check-ins, unique ledger keys).

A process killed between the write's commit and the key's completion leaves the key ``in_flight`` for good.
Such a claim is a lease: older than ``IDEMPOTENCY_LEASE_SECONDS`` (longer than any request may run), the
next retry with the same key and body takes it over and runs again — again safe for the same reason, so a
replayed request after a crash gets an answer instead of 409 for ever (docs/hardening.md, crash safety).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
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
        return _take_over_stale(existing)
    return Replay(existing.response_status, existing.response_body)


def _take_over_stale(record: IdempotencyRecord) -> IdempotencyRecord:
    """Renew a claim whose lease ran out (its process died); only one retry wins the conditional update."""
    now = utcnow()
    lease = timedelta(seconds=current_app.config.get("IDEMPOTENCY_LEASE_SECONDS", 120))
    if record.created_at > now - lease:
        raise KeyInFlight()
    renewed = db.session.execute(sa.update(IdempotencyRecord).where(
        IdempotencyRecord.id == record.id, IdempotencyRecord.state == IdempotencyState.IN_FLIGHT,
        IdempotencyRecord.created_at == record.created_at).values(created_at=now)).rowcount
    db.session.commit()
    if renewed != 1:
        raise KeyInFlight()
    return record


def complete_key(record_id: int, status: int, body: dict) -> None:
    db.session.execute(sa.update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(
        state=IdempotencyState.COMPLETED, response_status=status, response_body=body, created_at=utcnow()))
    db.session.commit()


def release_key(record_id: int) -> None:
    db.session.rollback()
    db.session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()
