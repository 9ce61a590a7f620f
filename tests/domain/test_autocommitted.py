"""transactions.autocommitted: a check-in's request runs on autocommit connections (no BEGIN, its one INSERT
commits as it runs); ``writes_together`` makes a write of several statements one transaction again, and a
second write without it is refused before it runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.api import idempotency as idempotency_api
from points_service.db import db, utcnow
from points_service.domain.approvals import records
from points_service.domain.checkin import scans
from points_service.domain.periods import to_rfc3339
from points_service.models import (
    ApprovalEvent,
    Checkin,
    IdempotencyRecord,
    IdempotencyState,
    LedgerEntry,
    Member,
    PolicyVersion,
    Record,
)
from points_service.transactions import MoreThanOneWrite, autocommitted, writes_together
from tests.factories import auth_header, make_world
from tests.factories.activities import make_activity, scan_body

ORIGINAL_NAME = "张晓丽"


@pytest.fixture
def isolation(app):
    """Each statement the next requests send, as (its verb, whether the driver ran it outside a transaction of
    its own: psycopg in autocommit mode sends no BEGIN and no COMMIT; on SQLite no BEGIN IMMEDIATE came first)."""
    seen: list[tuple[str, bool]] = []

    def record(connection, _cursor, statement, *_args):
        verb, driver = statement.split(None, 1)[0].upper(), connection.connection.dbapi_connection
        if verb not in ("PRAGMA", "BEGIN"):
            outside = driver.autocommit if hasattr(driver, "autocommit") else not driver.in_transaction
            seen.append((verb, outside))
    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def alice(app):
    world = make_world()
    db.session.commit()
    return world["alice"]


def checkin_request(client, world, starts_in: timedelta) -> tuple[str, dict, dict]:
    activity = make_activity(world["north"], utcnow() + starts_in)
    db.session.commit()
    organizer, url = auth_header(world["users"]["community_admin"]), f"/api/v1/activities/{activity.id}"
    member = auth_header(world["users"]["alice"])
    token = client.get(f"{url}/checkin-code", headers=organizer).get_json()["data"]["token"]
    db.session.commit()  # the request starts with no transaction open, as in a worker
    return f"{url}/checkins", scan_body(token), member


def checkins_of(member_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Checkin).where(Checkin.member_id == member_id))


def name_of(member_id: int) -> str:
    return db.session.scalar(sa.select(Member.name).where(Member.id == member_id))


def rename(member_id: int, name: str) -> None:
    db.session.execute(sa.update(Member).where(Member.id == member_id).values(name=name))


def test_an_on_time_check_in_sends_each_statement_outside_a_transaction(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, timedelta(minutes=20))
    isolation.clear()
    response = client.post(url, json=body, headers=alice)
    assert response.status_code == 201
    assert isolation == [("SELECT", True), ("SELECT", True), ("INSERT", True)]  # principal, rules, the row
    answer, row = response.get_json()["data"], db.session.scalars(sa.select(Checkin)).one()
    assert (answer["checkin_id"], answer["member_name"], answer["status"]) == (row.id, ORIGINAL_NAME, "checked_in")


def test_a_keyed_check_in_claims_writes_and_completes_its_key_autocommitted(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, timedelta(minutes=20))
    isolation.clear()
    response = client.post(url, json=body, headers={**alice, "Idempotency-Key": "scan-0001"})
    assert response.status_code == 201
    assert isolation == [("SELECT", True), ("INSERT", True), ("SELECT", True), ("INSERT", True), ("UPDATE", True)]
    replayed = client.post(url, json=body, headers={**alice, "Idempotency-Key": "scan-0001"})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == response.get_json()


def test_a_late_check_in_writes_its_deduction_in_one_transaction_with_it(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, -timedelta(minutes=30))
    isolation.clear()
    assert client.post(url, json=body, headers=alice).status_code == 201
    reads, writes = isolation[:2], isolation[2:]
    assert reads == [("SELECT", True), ("SELECT", True)]
    assert writes and not any(autocommitted for _verb, autocommitted in writes)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.source_id == str(db.session.scalar(sa.select(Checkin.id))))) == 1


def test_a_check_in_sent_to_review_writes_its_event_in_one_transaction_with_it(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, timedelta(minutes=20))
    isolation.clear()
    response = client.post(url, json={**body, "accuracy": 500}, headers=alice)
    assert response.status_code == 201 and response.get_json()["data"]["status"] == "review"
    reads, writes = isolation[:2], isolation[2:]
    assert reads == [("SELECT", True), ("SELECT", True)]
    assert [verb for verb, _ in writes] == ["INSERT", "INSERT"] and not any(outside for _, outside in writes)
    events = db.session.scalars(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "checkin")).all()
    assert [(event.target_id, event.to_status) for event in events] == [(response.get_json()["data"]["checkin_id"],
                                                                         "review")]


REPORTED_AT = utcnow() - timedelta(days=1)  # one instant: a keyed retry must send the same body


def self_report(client, member: dict, **headers):
    db.session.commit()  # the request starts with no transaction open, as in a worker
    body = {"item_code": "member.self_service_hour", "hours": 2, "description": "帮助社区整理图书",
            "occurred_at": to_rfc3339(REPORTED_AT)}
    return client.post("/api/v1/records", json=body, headers={**member, **headers})


def events_of_latest_record() -> list[tuple[int, str, str]]:
    record_id = db.session.scalar(sa.select(sa.func.max(Record.id)))
    return [(record_id, *row) for row in db.session.execute(
        sa.select(ApprovalEvent.from_status, ApprovalEvent.to_status).where(
            ApprovalEvent.target_type == "record", ApprovalEvent.target_id == record_id))]


def test_a_self_report_reads_outside_a_transaction_and_writes_its_record_and_event_together(
        app, client, isolation):
    alice = auth_header(make_world()["users"]["alice"])
    assert self_report(client, alice).status_code == 201  # the first one stores the policy in force
    isolation.clear()
    response = self_report(client, alice)
    assert response.status_code == 201
    reads, writes = isolation[:2], isolation[2:]
    assert reads == [("SELECT", True), ("SELECT", True)]  # his principal, the policy in force
    if db.engine.dialect.name == "postgresql":
        assert writes == [("WITH", True)]  # one statement, committed as it ran
    else:
        assert [verb for verb, _ in writes] == ["INSERT", "INSERT"] and not any(outside for _, outside in writes)
    assert events_of_latest_record() == [(response.get_json()["data"]["id"], "", "pending")]


def test_the_first_self_report_on_a_fresh_database_seeds_the_policy_with_it_in_one_transaction(
        app, client, isolation):
    alice = auth_header(make_world()["users"]["alice"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == 0
    response = self_report(client, alice)
    assert response.status_code == 201
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == 1
    assert events_of_latest_record() == [(response.get_json()["data"]["id"], "", "pending")]
    assert not any(outside for verb, outside in isolation if verb != "SELECT")


def test_a_keyed_self_report_is_written_once_and_replayed(app, client, isolation):
    alice = auth_header(make_world()["users"]["alice"])
    assert self_report(client, alice).status_code == 201  # the first one stores the policy in force
    isolation.clear()
    first = self_report(client, alice, **{"Idempotency-Key": "report-0001"})
    # his principal, the key's claim, the policy, the record with its event, the key's completion: each alone
    writes = [("WITH", True)] if db.engine.dialect.name == "postgresql" else [("INSERT", False), ("INSERT", False)]
    assert isolation == [("SELECT", True), ("INSERT", True), ("SELECT", True), *writes, ("UPDATE", True)]
    again = self_report(client, alice, **{"Idempotency-Key": "report-0001"})
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert events_of_latest_record() == [(first.get_json()["data"]["id"], "", "pending")]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 2


def test_a_self_report_whose_event_cannot_be_written_leaves_no_record(app, client, monkeypatch):
    alice = auth_header(make_world()["users"]["alice"])
    assert self_report(client, alice).status_code == 201  # the first one stores the policy in force
    unwritable = records.approval_event_row

    def event_without_status(*args, **kwargs):
        return {**unwritable(*args, **kwargs), "to_status": None}  # NOT NULL: the event's INSERT fails

    monkeypatch.setattr(records, "approval_event_row", event_without_status)
    assert self_report(client, alice).status_code == 500
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 1  # the first one only


def test_a_self_report_of_a_member_deactivated_after_his_principal_was_read_is_refused_by_its_one_write(
        app, client, monkeypatch, isolation):
    """His token passed; his deactivation commits before the write: the write's own guard refuses it (409)."""
    world = make_world()
    alice = auth_header(world["users"]["alice"])
    assert self_report(client, alice).status_code == 201  # the first one stores the policy in force
    checked = records._check

    def deactivated_meanwhile(*args):
        with db.engine.begin() as elsewhere:  # another worker's deactivation, committed
            elsewhere.execute(sa.update(Member).where(Member.id == world["alice"].id).values(is_active=False))
        return checked(*args)

    monkeypatch.setattr(records, "_check", deactivated_meanwhile)
    isolation.clear()
    response = self_report(client, alice)
    assert response.status_code == 409 and response.get_json()["code"] == "member_inactive"
    assert [verb for verb, _ in isolation][-1] in ("WITH", "INSERT")  # refused by the write, not by a read
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Record)) == 1  # the first one only
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent)) == 1


def test_a_repeated_check_in_is_refused_by_the_unique_key_and_writes_nothing(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, timedelta(minutes=20))
    assert client.post(url, json=body, headers=alice).status_code == 201
    db.session.commit()
    isolation.clear()
    repeated = client.post(url, json=body, headers=alice)
    assert repeated.status_code == 409 and repeated.get_json()["code"] == "already_checked_in"
    assert all(outside for _, outside in isolation)
    assert checkins_of(world["alice"].id) == 1


def test_a_keyed_check_in_takes_over_a_stale_claim_autocommitted(app, client, isolation):
    world = make_world()
    url, body, alice = checkin_request(client, world, timedelta(minutes=20))
    keyed = {**alice, "Idempotency-Key": "stale-0001"}
    fingerprint = fingerprint_of(app, url, body, keyed)
    db.session.add(IdempotencyRecord(user_id=world["users"]["alice"].id, key="stale-0001",
                                     state=IdempotencyState.IN_FLIGHT, fingerprint=fingerprint,
                                     created_at=utcnow() - timedelta(minutes=10)))  # a worker died holding it
    db.session.commit()
    isolation.clear()
    assert client.post(url, json=body, headers=keyed).status_code == 201
    assert [verb for verb, _ in isolation] == ["SELECT", "INSERT", "SELECT", "UPDATE", "SELECT", "INSERT", "UPDATE"]
    assert all(outside for _, outside in isolation)
    assert checkins_of(world["alice"].id) == 1
    assert db.session.scalar(sa.select(IdempotencyRecord.state)) == IdempotencyState.COMPLETED


def fingerprint_of(app, url: str, body: dict, headers: dict) -> str:
    with app.test_request_context(url, method="POST", json=body, headers=headers):
        return idempotency_api._fingerprint()


class DeductionFailed(Exception):
    pass


def test_a_late_check_in_whose_deduction_fails_leaves_no_check_in(app, client, monkeypatch):
    world = make_world()
    url, body, alice = checkin_request(client, world, -timedelta(minutes=30))

    def failing_deduct(*_args, **_kwargs):
        raise DeductionFailed("the ledger is unavailable")

    monkeypatch.setattr(scans, "deduct", failing_deduct)
    assert client.post(url, json=body, headers=alice).status_code == 500
    db.session.rollback()
    assert checkins_of(world["alice"].id) == 0


def test_a_second_write_in_one_autocommitted_transaction_is_refused_before_it_runs(alice):
    def two_writes():
        rename(alice.id, "第一次")
        rename(alice.id, "第二次")

    with pytest.raises(MoreThanOneWrite):
        autocommitted(two_writes)()
    db.session.rollback()
    assert name_of(alice.id) == "第一次"  # committed as it ran; the second never ran


@pytest.mark.postgres  # SQLite has no FOR UPDATE: SQLAlchemy leaves it out
def test_a_row_lock_in_an_autocommitted_transaction_is_refused(alice):
    def locking_read():
        db.session.execute(sa.select(Member.name).where(Member.id == alice.id).with_for_update())

    with pytest.raises(MoreThanOneWrite):
        autocommitted(locking_read)()
    db.session.rollback()


class UseCaseFailed(Exception):
    pass


def test_writes_together_makes_the_rest_one_transaction_and_keeps_what_was_read(alice, statements):
    read: list[str] = []
    alice_id = alice.id

    def use_case():
        member = db.session.get(Member, alice_id)
        writes_together(db.session())
        statements.clear()
        read.append(member.name)  # still loaded: no SELECT
        rename(alice_id, "第一次")
        rename(alice_id, "第二次")
        raise UseCaseFailed("the use case fails before its commit")

    db.session.expunge_all()
    with pytest.raises(UseCaseFailed):
        autocommitted(use_case)()
    assert read == [ORIGINAL_NAME] and len(statements) == 2  # the two UPDATEs only
    db.session.rollback()
    assert name_of(alice_id) == ORIGINAL_NAME


def test_a_session_already_in_a_transaction_keeps_it(alice):
    def two_writes():
        rename(alice.id, "第一次")
        rename(alice.id, "第二次")

    name_of(alice.id)  # the transaction is open
    autocommitted(two_writes)()
    db.session.rollback()
    assert name_of(alice.id) == ORIGINAL_NAME
