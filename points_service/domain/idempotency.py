"""Idempotency-Key bookkeeping (IETF draft semantics), per user.

Same key and same request → the first response, once; same key, other request → 422; same key while
the first is still running → 409. Only successful responses are kept: a failure (before or during
execution) releases the key, and the retry runs again — safe, because the writes themselves are
idempotent in the database (unique check-ins, unique ledger keys, orders and records unique by the key).

A process killed between the write's commit and the key's completion leaves the key ``in_flight`` for good.
Such a claim is a lease: older than ``IDEMPOTENCY_LEASE_SECONDS`` (longer than any request may run), the
next retry with the same key and body takes it over and runs again — again safe for the same reason, so a
replayed request after a crash gets an answer instead of 409 for ever (docs/hardening.md, crash safety).

Keys are kept for ``IDEMPOTENCY_RETENTION_DAYS`` (the daily ``retention`` job, ``purge_idempotency_keys``): a
retry after that is no retry, and the same key runs the request again as a new one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from points_service.db import core_execute, db, insert_unless_exists, purge_in_batches, utcnow
from points_service.domain.errors import Conflict, ServiceError
from points_service.models import IdempotencyRecord, IdempotencyState
from points_service.transactions import end_transaction


class KeyReused(ServiceError):
    status, code, message = 422, "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求"


class KeyInFlight(Conflict):
    code, message = "idempotency_in_flight", "相同的请求正在处理中，请稍后重试"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


@dataclass(frozen=True)
class Claim:
    id: int


def claim_key(user_id: int, key: str, fingerprint: str) -> Claim | Replay:
    """Take the key for this request (committed at once), or say what the first request got."""
    record_id = insert_unless_exists(IdempotencyRecord, {
        "user_id": user_id, "key": key, "fingerprint": fingerprint, "state": IdempotencyState.IN_FLIGHT,
        "created_at": utcnow()}, ("user_id", "key"))
    if record_id is not None:
        db.session.commit()
        return Claim(record_id)
    existing = core_execute(_existing_statement(), {"user_id": user_id, "key": key}).first()
    end_transaction(db.session())  # read only: a COMMIT keeps the worker's prepared statements
    if existing is None:  # released between our insert and our read: the caller may retry
        raise KeyInFlight()
    if existing.fingerprint != fingerprint:
        raise KeyReused()
    if existing.state == IdempotencyState.IN_FLIGHT:
        return _take_over_stale(existing)
    return Replay(existing.response_status, existing.response_body)


def _take_over_stale(record: sa.Row) -> Claim:
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
    return Claim(record.id)


def complete_key(record_id: int, status: int, body: dict) -> None:
    """One autocommitted UPDATE (a single statement needs no BEGIN/COMMIT round trips of its own)."""
    _autocommit(_complete_statement(), {"record_id": record_id, "state": IdempotencyState.COMPLETED,
                                        "response_status": status, "response_body": body, "created_at": utcnow()})


def release_key(record_id: int) -> None:
    end_transaction(db.session())  # the failed request's writes, if any, roll back
    _autocommit(_release_statement(), {"record_id": record_id})


def _autocommit(statement: sa.Executable, params: dict) -> None:
    if db.session().in_transaction():  # a test's session may hold its connection: commit as before
        core_execute(statement, params)
        db.session.commit()
        return
    try:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"}).execute(statement, params)
    finally:
        db.session.rollback()  # hands the connection back, its isolation level reset


def purge_idempotency_keys(before: datetime, *, batch_size: int = 5000) -> int:
    """Delete the keys completed before ``before`` (their replay is no longer owed) and those left in flight by a
    killed request whose lease ran out before it (a retry would take them over and run again anyway); never a
    key whose lease is running. ``batch_size`` rows per statement, each batch committed. Returns the count."""
    lease = timedelta(seconds=current_app.config.get("IDEMPOTENCY_LEASE_SECONDS", 120))
    stale = min(before, utcnow() - lease)
    # One range on created_at (stale <= before) that its index serves: with an OR of two (state, age) pairs the
    # planner walked the rest of the table by id for the batches' last, empty search.
    done = sa.and_(_records.c.created_at < before, sa.or_(
        _records.c.state == IdempotencyState.COMPLETED,
        sa.and_(_records.c.state == IdempotencyState.IN_FLIGHT, _records.c.created_at < stale)))
    return purge_in_batches(_records, done, batch_size)


_records = IdempotencyRecord.__table__


@functools.cache
def _existing_statement() -> sa.Select:
    return sa.select(_records.c.id, _records.c.created_at, _records.c.fingerprint, _records.c.state,
                     _records.c.response_status, _records.c.response_body).where(
        _records.c.user_id == sa.bindparam("user_id"), _records.c.key == sa.bindparam("key"))


@functools.cache
def _complete_statement() -> sa.Update:
    return _records.update().where(_records.c.id == sa.bindparam("record_id")).values(
        state=sa.bindparam("state"), response_status=sa.bindparam("response_status"),
        response_body=sa.bindparam("response_body"), created_at=sa.bindparam("created_at"))


@functools.cache
def _release_statement() -> sa.Delete:
    return _records.delete().where(_records.c.id == sa.bindparam("record_id"))
