"""The daily ``retention`` job: declared in the job table, run by the scheduler and by ``flask jobs run-once``,
counting what it deleted; a second run of its day does nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from points_service.db import db
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.jobs.scheduler import fire
from points_service.models import AuditEntry, Delivery, DeliveryState, IdempotencyRecord, IdempotencyState, JobRun
from tests.factories import make_user, make_world
from tests.factories.ledger import local
from tests.factories.notifications import enqueue, make_grant


def old_rows() -> None:
    """Against the day 2026-11-30 (ends 2026-12-01 00:00 local): a key completed 31 days before and one 29 days
    before; a delivery sent 91 days before and one still pending as old."""
    end = local(2026, 12, 1)
    user = make_user(username="keyholder")
    db.session.flush()
    for key, age in (("old-key-0001", 31), ("new-key-0001", 29)):
        db.session.add(IdempotencyRecord(user_id=user.id, key=key, fingerprint="f", state=IdempotencyState.COMPLETED,
                                         response_status=201, response_body={}, created_at=end - timedelta(days=age)))
    alice = make_world()["alice"]
    make_grant(alice, available=2)
    db.session.commit()
    for source, state in (("old:sent", DeliveryState.SENT), ("old:pending", DeliveryState.PENDING)):
        message = enqueue(alice, source)
        db.session.execute(sa.update(Delivery).where(Delivery.message_id == message.id).values(
            state=state, updated_at=end - timedelta(days=91)))
    db.session.commit()


def left() -> tuple[list[str], list[str]]:
    db.session.expire_all()
    keys = sorted(db.session.scalars(sa.select(IdempotencyRecord.key)))
    states = sorted(str(state) for state in db.session.scalars(sa.select(Delivery.state)))
    db.session.commit()  # SQLite's one in-memory connection: the scheduler's session starts its own transaction
    return keys, states


def test_the_retention_job_is_declared_daily_with_a_weeks_lookback():
    spec = JOBS_BY_ID["retention"]
    assert spec.claimed and spec.cron == {"hour": 5, "minute": 0} and spec.lookback == timedelta(days=7)


def test_run_once_purges_the_day_reports_its_counts_and_a_second_run_does_nothing(app):
    old_rows()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "run-once", "retention", "--period", "2026-11-30"])
    assert first.exit_code == 0, first.output
    assert "succeeded" in first.output and "'idempotency_keys': 1, 'deliveries': 1" in first.output
    assert left() == (["new-key-0001"], ["pending"])
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job_id == "retention"))
    assert (run.period, str(run.status), run.result) == ("2026-11-30", "succeeded",
                                                         {"idempotency_keys": 1, "deliveries": 1})
    assert db.session.scalar(sa.select(AuditEntry.detail).where(AuditEntry.target_id == "retention:2026-11-30")) == {
        "idempotency_keys": 1, "deliveries": 1}
    second = runner.invoke(args=["jobs", "run-once", "retention", "--period", "2026-11-30"])
    assert "already done" in second.output
    assert left() == (["new-key-0001"], ["pending"])


def test_run_once_refuses_a_month_and_a_day_not_over(app):
    runner = app.test_cli_runner()
    for period, why in (("2026-11", "settles day periods"), ("2199-01-01", "has not ended yet")):
        refused = runner.invoke(args=["jobs", "run-once", "retention", "--period", period])
        assert refused.exit_code == 2 and why in refused.output, refused.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0


def test_the_scheduler_runs_the_previous_day_and_a_later_day_deletes_what_has_aged_since(app):
    old_rows()
    assert [(r["period"], r["status"]) for r in fire(app, "retention", now=local(2026, 12, 1, 5, 1))][-1] == (
        "2026-11-30", "succeeded")
    assert left() == (["new-key-0001"], ["pending"])
    fire(app, "retention", now=local(2026, 12, 3, 5, 1))  # 2026-12-02 ends 31 days after the other key
    assert left() == ([], ["pending"])
    results = db.session.scalars(sa.select(JobRun.result).where(JobRun.job_id == "retention")
                                 .order_by(JobRun.period)).all()
    assert results[-2:] == [{"idempotency_keys": 0, "deliveries": 0}, {"idempotency_keys": 1, "deliveries": 0}]
