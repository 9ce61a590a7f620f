"""Idempotency-Key bookkeeping: a claim is committed at once, completing or releasing it is one statement of
its own (no transaction left open), and a second claim of the key sees what the first got."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.idempotency import (
    Claim,
    KeyInFlight,
    KeyReused,
    Replay,
    claim_key,
    complete_key,
    purge_idempotency_keys,
    release_key,
)
from points_service.models import IdempotencyRecord, IdempotencyState
from tests.factories import make_user


@pytest.fixture
def user_id(app):
    user = make_user(username="keyholder")
    db.session.commit()
    return user.id


def stored(user_id: int) -> list[tuple]:
    rows = db.session.execute(sa.select(IdempotencyRecord.state, IdempotencyRecord.response_status,
                                        IdempotencyRecord.response_body).where(IdempotencyRecord.user_id == user_id))
    return [tuple(row) for row in rows]


def test_a_claimed_key_is_in_flight_for_a_second_claim_and_reused_for_another_request(user_id):
    claim = claim_key(user_id, "k-0001-abcdef", "f1")
    assert isinstance(claim, Claim) and not db.session().in_transaction()
    with pytest.raises(KeyInFlight):
        claim_key(user_id, "k-0001-abcdef", "f1")
    with pytest.raises(KeyReused):
        claim_key(user_id, "k-0001-abcdef", "f2")


def test_completing_a_key_stores_the_answer_without_leaving_a_transaction_open(user_id):
    claim = claim_key(user_id, "k-0002-abcdef", "f1")
    complete_key(claim.id, 201, {"data": {"id": 7}})
    assert not db.session().in_transaction()
    assert stored(user_id) == [(IdempotencyState.COMPLETED, 201, {"data": {"id": 7}})]
    assert claim_key(user_id, "k-0002-abcdef", "f1") == Replay(201, {"data": {"id": 7}})


def test_releasing_a_key_forgets_it_so_the_retry_runs_again(user_id):
    claim = claim_key(user_id, "k-0003-abcdef", "f1")
    release_key(claim.id)
    assert not db.session().in_transaction() and stored(user_id) == []
    assert isinstance(claim_key(user_id, "k-0003-abcdef", "f1"), Claim)


def keys_at(user_id: int, *rows: tuple[str, IdempotencyState, datetime]) -> None:
    for key, state, created_at in rows:
        db.session.add(IdempotencyRecord(user_id=user_id, key=key, fingerprint="f", state=state, created_at=created_at,
                                         response_status=201 if state == IdempotencyState.COMPLETED else None,
                                         response_body={} if state == IdempotencyState.COMPLETED else None))
    db.session.commit()


def kept_keys() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(sa.select(IdempotencyRecord.key)))


def test_purge_deletes_completed_keys_older_than_the_cutoff_and_keeps_recent_and_running_ones(user_id):
    now, day = utcnow(), timedelta(days=1)
    keys_at(user_id, ("old-done-0001", IdempotencyState.COMPLETED, now - 31 * day),
            ("new-done-0001", IdempotencyState.COMPLETED, now - 29 * day),
            ("running-00001", IdempotencyState.IN_FLIGHT, now - timedelta(seconds=30)),  # its lease is running
            ("crashed-00001", IdempotencyState.IN_FLIGHT, now - 31 * day))  # a killed request's, lease long over
    assert purge_idempotency_keys(now - 30 * day) == 2
    assert not db.session().in_transaction()  # committed
    assert kept_keys() == ["new-done-0001", "running-00001"]
    assert purge_idempotency_keys(now - 30 * day) == 0  # a second run finds nothing


def test_purge_never_takes_a_key_whose_lease_is_running_whatever_the_cutoff(app, user_id):
    now = utcnow()
    app.config["IDEMPOTENCY_LEASE_SECONDS"] = 3600
    keys_at(user_id, ("running-00001", IdempotencyState.IN_FLIGHT, now - timedelta(minutes=30)),
            ("done-00000001", IdempotencyState.COMPLETED, now - timedelta(minutes=30)))
    assert purge_idempotency_keys(now) == 1
    assert kept_keys() == ["running-00001"]


def test_purge_deletes_in_committed_batches(user_id, monkeypatch):
    now = utcnow()
    keys_at(user_id, *((f"old-key-{n:05}", IdempotencyState.COMPLETED, now - timedelta(days=40)) for n in range(7)),
            ("new-key-00000", IdempotencyState.COMPLETED, now))
    commits = []
    real_commit = db.session.commit
    monkeypatch.setattr(db.session, "commit", lambda: (commits.append(len(kept_keys())), real_commit())[1])
    assert purge_idempotency_keys(now - timedelta(days=30), batch_size=3) == 7
    # rows left at each commit: after batches of 3, 3 and 1, then the closing commit of the search finding none
    assert commits == [5, 2, 1, 1]
    assert kept_keys() == ["new-key-00000"]


def test_after_the_purge_the_same_key_runs_the_request_again(user_id):
    keys_at(user_id, ("k-0001-abcdef", IdempotencyState.COMPLETED, utcnow() - timedelta(days=31)))
    assert isinstance(claim_key(user_id, "k-0001-abcdef", "f"), Replay)
    purge_idempotency_keys(utcnow() - timedelta(days=30))
    assert isinstance(claim_key(user_id, "k-0001-abcdef", "f"), Claim)  # a fresh execution, as documented
