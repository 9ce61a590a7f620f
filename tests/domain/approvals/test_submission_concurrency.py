"""Concurrent submissions on PostgreSQL: one submission retried at once, with its request key, is one record.

The mini-program retries a self-report whose answer it did not get; the retries may overlap the first. The
Idempotency-Key's own claim lets only one of them run at a time over HTTP; underneath it the record's unique
key (submitter, request key) holds even when they do run together (a claim taken over after its lease).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.approvals import records
from points_service.models import ApprovalEvent, Record, User
from tests.concurrency import hammer
from tests.factories import make_world
from tests.factories.records import NOW, submission

pytestmark = pytest.mark.postgres


def submitting(user_id: int, request_key: str):
    def call():
        actor = principal_for(db.session.get(User, user_id))
        return records.submit_member_record(actor, submission(request_key=request_key), now=NOW).id
    return call


def test_thirty_overlapping_retries_of_one_submission_write_one_record_and_all_answer_it(app):
    world = make_world()
    alice = world["users"]["alice"].id

    answers = hammer(app, [submitting(alice, "overlapping-retry-01")] * 30, workers=30)

    written = db.session.scalars(sa.select(Record.id).where(Record.submitted_by_id == alice)).all()
    assert len(written) == 1 and set(answers) == set(written)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent).where(
        ApprovalEvent.target_type == "record")) == 1
