"""The scheduler's contract: period from the scheduled fire time, one run per (job, period), failures
recorded and retried, missed runs caught up once."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.domain.periods import parse_period
from points_service.jobs import runner
from points_service.jobs.schedule import JOBS, JOBS_BY_ID
from points_service.jobs.scheduler import catch_up, fire, last_fire_time, trigger_for
from points_service.models import AuditEntry, EntryKind, JobRun, JobRunStatus, LedgerEntry
from tests.factories import make_world
from tests.factories.ledger import local, member_fact


def runs() -> list[tuple[str, str, str]]:
    return [(r.job_id, r.period, str(r.status)) for r in db.session.scalars(sa.select(JobRun).order_by(JobRun.id))]


def test_the_latest_fire_time_is_found_from_the_cron_trigger_in_shanghai():
    trigger = trigger_for(JOBS_BY_ID["standing_decay"])  # 1st of the month, 00:10 local
    assert last_fire_time(trigger, local(2026, 12, 1, 0, 15)) == local(2026, 12, 1, 0, 10)
    assert last_fire_time(trigger, local(2026, 12, 1, 0, 9)) == local(2026, 11, 1, 0, 10)


def test_a_late_run_still_settles_the_period_of_its_scheduled_fire_time(app):
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2026, 11, 20))
    run = fire(app, "standing_decay", now=local(2026, 12, 3, 17, 0))  # two days late
    assert run == {"job": "standing_decay", "period": "2026-11", "scheduled_for": local(2026, 12, 1, 0, 10),
                   "status": "succeeded"}


def test_a_yearly_reset_fires_monthly_but_settles_each_year_once(app):
    fire(app, "assessment_reset", now=local(2027, 1, 1, 1))
    fire(app, "assessment_reset", now=local(2027, 2, 1, 1))
    assert runs() == [("assessment_reset", "2026", "succeeded")]


def test_catch_up_after_a_restart_runs_each_jobs_latest_missed_period_once(app):
    catch_up(app, now=local(2026, 12, 5))
    catch_up(app, now=local(2026, 12, 6))
    # The daily job's latest missed day differs between the two restarts, so each settles its own day.
    assert sorted(runs()) == [("activity_consequences", "2026-12-03", "succeeded"),
                              ("activity_consequences", "2026-12-04", "succeeded"),
                              ("annual_export", "2025", "succeeded"), ("annual_settlement", "2025", "succeeded"),
                              ("assessment_reset", "2025", "succeeded"),
                              # weekly: both restarts find Sunday 29 November's run, which audits the 28th
                              ("boards_audit", "2026-11-28", "succeeded"),
                              ("market_order_expiry", "2026-12-03", "succeeded"),
                              ("market_order_expiry", "2026-12-04", "succeeded"),
                              ("member_changes", "2026-12-03", "succeeded"),
                              ("member_changes", "2026-12-04", "succeeded"),
                              ("red_flag_award", "2026-Q3", "succeeded"),
                              ("redeemable_expiry", "2026-11", "succeeded"), ("standing_decay", "2026-11", "succeeded"),
                              ("star_propose", "2026-Q3", "succeeded")]


def test_a_failed_run_is_recorded_with_nothing_written_and_a_rerun_completes_it(app, monkeypatch):
    world = make_world()
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, 10, 20))
    spec = JOBS_BY_ID["standing_decay"]

    def crash_after_writing(period, policy):
        spec.run(period, policy)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        runner.run_job(replace(spec, run=crash_after_writing), parse_period("2026-10"))
    assert runs() == [("standing_decay", "2026-10", "failed")]
    assert db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.DECAY)).all() == []
    assert "disk on fire" in db.session.scalar(sa.select(JobRun.error))
    run = runner.run_job(spec, parse_period("2026-10"))
    assert (run.status, run.attempts, run.result) == (JobRunStatus.SUCCEEDED, 2, {"entries": 1})
    actions = db.session.scalars(sa.select(AuditEntry.result).where(AuditEntry.action == "job.run")).all()
    assert actions == ["failed", "ok"]


def test_every_declared_job_has_a_stable_unique_id_and_a_valid_trigger():
    assert len({job.id for job in JOBS}) == len(JOBS)
    for job in JOBS:
        assert trigger_for(job) is not None


def test_the_scheduler_process_registers_every_job_and_catches_up_before_starting(app, monkeypatch):
    from apscheduler.schedulers.blocking import BlockingScheduler

    from points_service.jobs import scheduler

    started = {}
    monkeypatch.setattr(BlockingScheduler, "start", lambda self: started.update(jobs=self.get_jobs()))
    caught_up = []
    monkeypatch.setattr(scheduler, "catch_up", lambda app: caught_up.append(True))
    scheduler.run_scheduler(app)
    assert caught_up == [True]
    assert sorted(job.id for job in started["jobs"]) == sorted(spec.id for spec in JOBS)
    assert all(str(job.trigger.timezone) == "Asia/Shanghai" for job in started["jobs"])


def test_create_app_never_starts_a_scheduler(app):
    assert "apscheduler" not in app.extensions
    import threading

    assert not any("APScheduler" in thread.name for thread in threading.enumerate())
