"""The scheduler's contract: period from the scheduled fire time, one run per (job, period), failures
recorded and retried, missed periods within the lookback settled oldest first."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.domain.periods import parse_period
from points_service.jobs import runner
from points_service.jobs.schedule import JOBS, JOBS_BY_ID
from points_service.jobs.scheduler import catch_up, fire, fire_times, trigger_for
from points_service.models import AuditEntry, EntryKind, JobRun, JobRunStatus, LedgerEntry
from tests.factories import make_world
from tests.factories.ledger import install_policy, local, member_fact


def runs() -> list[tuple[str, str, str]]:
    return [(r.job_id, r.period, str(r.status)) for r in db.session.scalars(sa.select(JobRun).order_by(JobRun.id))]


def test_fire_times_are_found_from_the_cron_trigger_in_shanghai():
    trigger = trigger_for(JOBS_BY_ID["standing_decay"])  # 1st of the month, 00:10 local
    assert fire_times(trigger, local(2026, 10, 1, 0, 10), local(2026, 12, 1, 0, 15)) == [
        local(2026, 10, 1, 0, 10), local(2026, 11, 1, 0, 10), local(2026, 12, 1, 0, 10)]
    assert fire_times(trigger, local(2026, 11, 2), local(2026, 12, 1, 0, 9)) == []


def test_a_late_run_still_settles_the_period_of_its_scheduled_fire_time(app):
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2026, 11, 20))
    ran = fire(app, "standing_decay", now=local(2026, 12, 3, 17, 0))  # two days late
    assert ran[-1] == {"job": "standing_decay", "period": "2026-11", "scheduled_for": local(2026, 12, 1, 0, 10),
                       "status": "succeeded"}


def test_a_yearly_reset_fires_monthly_but_settles_each_year_once(app):
    fire(app, "assessment_reset", now=local(2027, 1, 1, 1))
    fire(app, "assessment_reset", now=local(2027, 2, 1, 1))
    assert runs() == [("assessment_reset", "2026", "succeeded")]


def test_catch_up_after_a_restart_settles_every_period_due_within_the_lookback_once(app):
    catch_up(app, now=local(2026, 12, 5))
    catch_up(app, now=local(2026, 12, 6))
    months = ["2026-08", "2026-09", "2026-10", "2026-11"]  # the fire times of the last 100 days
    days = [f"2026-11-{day}" for day in (27, 28, 29, 30)] + [f"2026-12-0{day}" for day in (1, 2, 3, 4)]
    expected = {"standing_decay": months, "redeemable_expiry": months,
                # yearly and quarterly jobs fired monthly: the latest period (once), not the ones before
                "assessment_reset": ["2025"], "annual_settlement": ["2025"], "annual_export": ["2025"],
                "star_propose": ["2026-Q3"], "red_flag_award": ["2026-Q3"],
                # daily: the last 7 days at the first restart, one more day at the second
                "activity_consequences": days, "market_order_expiry": days, "member_changes": days,
                "retention": days,
                # weekly: both restarts find Sunday 29 November's run, which audits the 28th
                "boards_audit": ["2026-11-28"]}
    assert sorted(runs()) == sorted((job, period, "succeeded") for job, periods in expected.items()
                                    for period in periods)


def failing(monkeypatch, job_id: str, period_key: str, times: int | None = None) -> None:
    """Make ``job_id`` fail for ``period_key`` (the first ``times`` attempts, or always)."""
    spec, failures = JOBS_BY_ID[job_id], []

    def run(period, policy):
        if period.key == period_key and (times is None or len(failures) < times):
            failures.append(period.key)
            raise RuntimeError("database restarted")
        return spec.run(period, policy)
    monkeypatch.setitem(JOBS_BY_ID, job_id, replace(spec, run=run))


def fired(app, job_id: str, now) -> list[tuple[str, str]]:
    return [(run["period"], run["status"]) for run in fire(app, job_id, now=now)]


def decays() -> list[tuple[str, Decimal]]:
    entries = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.DECAY)
                                 .order_by(LedgerEntry.id)).all()
    return [(entry.source_id, entry.points) for entry in entries]


def test_a_month_that_failed_is_retried_on_the_next_firing_before_the_new_month(app, monkeypatch):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 10, 5, 9))  # 10 points
    failing(monkeypatch, "standing_decay", "2026-10", times=1)
    assert fired(app, "standing_decay", local(2026, 11, 1, 0, 15))[-1] == ("2026-10", "failed")
    assert fired(app, "standing_decay", local(2026, 12, 1, 0, 15)) == [("2026-10", "succeeded"),
                                                                        ("2026-11", "succeeded")]
    # November decays what October's decay left (oldest first): the amounts of two on-time runs
    assert decays() == [("standing_decay:2026-10", Decimal("-1.13")), ("standing_decay:2026-11", Decimal("-0.97"))]
    assert db.session.scalar(sa.select(JobRun.attempts).where(JobRun.period == "2026-10")) == 2


def test_months_missed_during_downtime_are_all_settled_oldest_first(app):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 10, 5, 9))
    fire(app, "standing_decay", now=local(2026, 10, 1, 0, 15))
    # down from 2 October to 7 December: the 1 November and 1 December firings never happened
    assert fired(app, "standing_decay", local(2026, 12, 7, 9)) == [("2026-10", "succeeded"),
                                                                    ("2026-11", "succeeded")]
    assert decays() == [("standing_decay:2026-10", Decimal("-1.13")), ("standing_decay:2026-11", Decimal("-0.97"))]


def test_a_balance_job_holds_later_months_back_while_an_older_one_fails_until_it_leaves_the_lookback(
        app, monkeypatch):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 10, 5, 9))
    failing(monkeypatch, "standing_decay", "2026-10")
    fire(app, "standing_decay", now=local(2026, 11, 1, 0, 15))
    for month in (12, 13, 14):  # December, January, February: October is retried, nothing after it runs
        now = local(2026 + month // 13, (month - 1) % 12 + 1, 1, 0, 15)
        assert fired(app, "standing_decay", now) == [("2026-10", "failed")]
    assert fired(app, "standing_decay", local(2027, 3, 1, 0, 15)) == [
        ("2026-11", "succeeded"), ("2026-12", "succeeded"), ("2027-01", "succeeded"), ("2027-02", "succeeded")]
    assert db.session.scalar(sa.select(JobRun.attempts).where(JobRun.period == "2026-10")) == 4


def test_a_balance_job_never_runs_an_older_period_after_a_later_one_succeeded(app):
    for period, status in (("2026-10", JobRunStatus.FAILED), ("2026-11", JobRunStatus.SUCCEEDED)):
        db.session.add(JobRun(job_id="standing_decay", period=period, status=status))
    db.session.commit()
    assert fired(app, "standing_decay", local(2027, 1, 1, 0, 15)) == [("2026-12", "succeeded")]
    assert ("standing_decay", "2026-10", "failed") in runs()


def test_a_failing_day_does_not_hold_back_the_later_days_of_an_independent_job(app, monkeypatch):
    failing(monkeypatch, "activity_consequences", "2026-11-08")
    ran = fired(app, "activity_consequences", local(2026, 11, 11, 1, 5))
    assert ran == [(f"2026-11-{day:02d}", "failed" if day == 8 else "succeeded") for day in range(4, 11)]
    assert fired(app, "activity_consequences", local(2026, 11, 12, 1, 5)) == [("2026-11-08", "failed"),
                                                                              ("2026-11-11", "succeeded")]


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
def test_decay_switching_from_monthly_to_quarterly_decays_each_month_once(app):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 7, 5, 9))
    install_policy()
    install_policy(lambda document: document["standing"].update(period="quarter"), effective_from=local(2026, 10, 1))
    for month in (8, 9, 10, 11, 12, 13):
        fire(app, "standing_decay", now=local(2026 + month // 13, (month - 1) % 12 + 1, 1, 0, 15))
    # September under the monthly version in force as it ends; 2026-Q3 (its months decayed already) never
    assert [key for key, _ in decays()] == [f"standing_decay:{period}"
                                             for period in ("2026-07", "2026-08", "2026-09", "2026-Q4")]


def test_the_red_flag_switching_from_quarterly_to_monthly_awards_the_last_quarter(app):
    make_world()
    install_policy()
    install_policy(lambda document: document["red_flag"].update(period="month"), effective_from=local(2026, 10, 1))
    fire(app, "red_flag_award", now=local(2026, 10, 1, 3))
    fire(app, "red_flag_award", now=local(2026, 11, 1, 3))
    assert [(period, status) for job, period, status in runs()] == [
        ("2026-Q2", "succeeded"), ("2026-Q3", "succeeded"), ("2026-10", "succeeded")]
