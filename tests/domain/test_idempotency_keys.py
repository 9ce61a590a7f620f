"""Idempotency-Key bookkeeping: a claim is committed at once, completing or releasing it is one statement of
its own (no transaction left open), and a second claim of the key sees what the first got."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.idempotency import (
    Claim,
    KeyInFlight,
    KeyReused,
    Replay,
    claim_key,
    complete_key,
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
