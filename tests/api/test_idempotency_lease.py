"""A request whose process died after its write but before its Idempotency-Key was completed: the key stays
in flight; once its lease has run out a retry takes it over and gets the first write back, never a second."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.models import IdempotencyRecord, IdempotencyState, LedgerEntry
from tests.factories import auth_header, make_world

KEY = "crashed-adjust-0001"


def _crash_after_the_write(client, world, payload, headers, age: timedelta) -> int:
    """Post once, then put the key back as a killed worker would have left it: in flight, ``age`` old."""
    first = client.post("/api/v1/adjustments", json=payload, headers=headers)
    assert first.status_code == 201
    db.session.execute(sa.update(IdempotencyRecord).where(IdempotencyRecord.key == KEY).values(
        state=IdempotencyState.IN_FLIGHT, response_status=None, response_body=None, created_at=utcnow() - age))
    db.session.commit()
    return first.get_json()["data"]["id"]


def _adjustments(member_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.subject_id == member_id, LedgerEntry.kind == "adjustment"))


def test_a_retry_after_the_lease_gets_the_written_entry_back_and_writes_no_second(app, client):
    world = make_world()
    payload = {"subject_type": "member", "subject_id": world["bob"].id, "points": 2, "reason": "补录"}
    headers = {**auth_header(world["users"]["admin"]), "Idempotency-Key": KEY}
    entry_id = _crash_after_the_write(client, world, payload, headers, timedelta(minutes=10))

    retry = client.post("/api/v1/adjustments", json=payload, headers=headers)

    assert retry.status_code == 201 and retry.get_json()["data"]["id"] == entry_id
    assert _adjustments(world["bob"].id) == 1
    again = client.post("/api/v1/adjustments", json=payload, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json()["data"]["id"] == entry_id


def test_a_retry_within_the_lease_is_told_the_first_is_still_running(app, client):
    world = make_world()
    payload = {"subject_type": "member", "subject_id": world["bob"].id, "points": 2, "reason": "补录"}
    headers = {**auth_header(world["users"]["admin"]), "Idempotency-Key": KEY}
    _crash_after_the_write(client, world, payload, headers, timedelta(seconds=1))

    retry = client.post("/api/v1/adjustments", json=payload, headers=headers)

    assert retry.status_code == 409 and retry.get_json()["code"] == "idempotency_in_flight"
    assert _adjustments(world["bob"].id) == 1
