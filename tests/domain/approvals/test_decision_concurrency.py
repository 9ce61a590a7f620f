"""Concurrent decisions on PostgreSQL: one terminal state per record (I5), one award (I2, I6), losers 409.

SQLite serializes writers, so only PostgreSQL shows what two secretaries clicking at once really do.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals.decisions import Decision
from points_service.domain.errors import ServiceError
from points_service.domain.ledger.totals import compare_totals
from points_service.models import ApprovalEvent, LedgerEntry, Record, RecordStatus, Role, SourceType, User
from tests.concurrency import hammer
from tests.factories import make_user, make_world
from tests.factories.records import NOW, self_report

pytestmark = pytest.mark.postgres



def deciding(user_id: int, approval_ids: list[str], decision: Decision, comment: str = "同意"):
    """A call that decides as that user and answers "ok" or the error's status and code (never raises)."""
    def call():
        actor = principal_for(db.session.get(User, user_id))
        try:
            if len(approval_ids) == 1:
                approvals.decide(actor, approval_ids[0], decision, comment, now=NOW)
            else:
                approvals.decide_batch(actor, approval_ids, decision, comment, now=NOW)
            return "ok"
        except ServiceError as error:
            return (error.status, error.code)
    return call


@pytest.fixture
def world(app):
    world = make_world()
    world["secretaries"] = [world["users"]["secretary"].id] + [
        make_user((Role.BRANCH_SECRETARY, world["fin1"].id), username=f"fin1_secretary_{n}").id for n in range(9)]
    db.session.commit()
    return world


def record_awards(record_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(
        LedgerEntry.source_type == SourceType.RECORD, LedgerEntry.source_id == str(record_id)))


def test_two_secretaries_approving_one_record_at_once_give_one_approval_and_one_award(app, world):
    record_id = self_report(world["users"]["alice"]).id
    first, second = world["secretaries"][:2]
    results = hammer(app, [deciding(first, [f"record:{record_id}"], Decision.APPROVE),
                           deciding(second, [f"record:{record_id}"], Decision.APPROVE)])
    assert sorted(results, key=str) == [(409, "invalid_transition"), "ok"]
    db.session.expire_all()
    assert db.session.get(Record, record_id).status == RecordStatus.APPROVED
    assert record_awards(record_id) == 2  # one award: its assessment and redeemable entries
    assert db.session.scalar(sa.select(sa.func.count()).where(ApprovalEvent.to_status == "approved")) == 1
    assert compare_totals() == []


def test_an_approval_racing_a_rejection_ends_in_exactly_one_terminal_state(app, world):
    record_id = self_report(world["users"]["alice"]).id
    first, second = world["secretaries"][:2]
    results = hammer(app, [deciding(first, [f"record:{record_id}"], Decision.APPROVE),
                           deciding(second, [f"record:{record_id}"], Decision.REJECT, "不符")])
    assert results.count("ok") == 1 and results.count((409, "invalid_transition")) == 1
    db.session.expire_all()
    status = db.session.get(Record, record_id).status
    assert record_awards(record_id) == (2 if status == RecordStatus.APPROVED else 0)
    terminal = sa.select(sa.func.count()).where(ApprovalEvent.target_id == record_id,
                                                ApprovalEvent.to_status.in_(["approved", "rejected"]))
    assert db.session.scalar(terminal) == 1


def test_ten_secretaries_and_overlapping_batches_never_decide_a_record_twice(app, world):
    record_ids = [self_report(world["users"]["alice"], "member.self_service_hour").id for _ in range(6)]
    ids = [f"record:{record_id}" for record_id in record_ids]
    calls = [deciding(user_id, [ids[n % len(ids)]], Decision.APPROVE) for n, user_id in
             enumerate(world["secretaries"])]
    calls += [deciding(world["secretaries"][0], ids[:3], Decision.APPROVE),
              deciding(world["secretaries"][1], list(reversed(ids)), Decision.REJECT, "批量驳回")]
    results = hammer(app, calls)
    assert set(results) <= {"ok", (409, "invalid_transition")}  # never a 500 or a deadlock
    db.session.expire_all()
    for record_id in record_ids:
        record = db.session.get(Record, record_id)
        assert record.status in (RecordStatus.APPROVED, RecordStatus.REJECTED)
        assert record_awards(record_id) == (2 if record.status == RecordStatus.APPROVED else 0)
    assert compare_totals() == []
