"""A request whose process died after its write but before its Idempotency-Key was completed: the key stays
in flight; once its lease has run out a retry takes it over and gets the first write back, never a second. A
request that failed after its write had committed (503) released its key: the retry runs again, and again
finds the first write."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.api import records as records_api
from points_service.db import db, utcnow
from points_service.domain.periods import to_rfc3339
from points_service.models import IdempotencyRecord, IdempotencyState, LedgerEntry, Record, Role
from tests.factories import auth_header, make_user, make_world

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


SELF_REPORT = {"item_code": "member.self_service_hour", "hours": 2, "description": "为独居老人代购药品"}
ORG_RECORD = {"item_code": "org.project_done", "description": "完成社区助老食堂改造"}


def _record_posts(world) -> dict:
    """Each record endpoint: the account posting, its URL, its body and the use case the view calls."""
    org_admin = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    db.session.commit()
    yesterday = {"occurred_at": to_rfc3339(utcnow() - timedelta(days=1))}
    return {
        "self-report": (world["users"]["alice"], "/api/v1/records", {**SELF_REPORT, **yesterday},
                        "submit_member_record"),
        "organization record": (org_admin, f"/api/v1/organizations/{world['finance'].id}/records",
                                {**ORG_RECORD, **yesterday}, "submit_organization_record"),
    }


def _records_by(user) -> list[int]:
    return list(db.session.scalars(sa.select(Record.id).where(Record.submitted_by_id == user.id)))


@pytest.mark.parametrize("endpoint", ["self-report", "organization record"])
def test_a_record_retried_after_the_lease_is_the_record_first_written(app, client, endpoint):
    world = make_world()
    user, url, payload, _ = _record_posts(world)[endpoint]
    headers = {**auth_header(user), "Idempotency-Key": KEY}
    first = client.post(url, json=payload, headers=headers)
    assert first.status_code == 201
    db.session.execute(sa.update(IdempotencyRecord).where(IdempotencyRecord.key == KEY).values(
        state=IdempotencyState.IN_FLIGHT, response_status=None, response_body=None,
        created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()

    retry = client.post(url, json=payload, headers=headers)

    assert retry.status_code == 201 and retry.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    assert _records_by(user) == [first.get_json()["data"]["id"]]


@pytest.mark.parametrize("endpoint", ["self-report", "organization record"])
def test_a_record_whose_answer_failed_after_its_commit_is_not_written_again_by_the_retry(app, client, monkeypatch,
                                                                                         endpoint):
    world = make_world()
    user, url, payload, use_case = _record_posts(world)[endpoint]
    headers = {**auth_header(user), "Idempotency-Key": KEY}
    submit = getattr(records_api.records, use_case)

    def committed_then_busy(*args, **kwargs):
        submit(*args, **kwargs)
        raise sa.exc.OperationalError("SELECT …", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(records_api.records, use_case, committed_then_busy)
    failed = client.post(url, json=payload, headers=headers)
    assert failed.status_code == 503 and failed.get_json()["code"] == "database_busy"
    written = _records_by(user)
    assert len(written) == 1  # the write had committed; the key was released with the failure

    monkeypatch.setattr(records_api.records, use_case, submit)
    retry = client.post(url, json=payload, headers=headers)

    assert retry.status_code == 201 and retry.get_json()["data"]["id"] == written[0]
    assert _records_by(user) == written
