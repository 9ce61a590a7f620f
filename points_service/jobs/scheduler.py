"""The one scheduler process (``flask jobs run``): never started inside create_app, because under
gunicorn every worker would run every job. A second process is harmless anyway (claim rows)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from points_service.db import db, utcnow
from points_service.domain.periods import LOCAL_TZ, ONE_TICK, Period, local_midnight
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job, run_unclaimed
from points_service.jobs.schedule import JOBS, JOBS_BY_ID, JobSpec
from points_service.models import JobRun, JobRunStatus

log = logging.getLogger(__name__)


def trigger_for(spec: JobSpec) -> CronTrigger:
    return CronTrigger(timezone=LOCAL_TZ, **spec.cron)


def fire_times(trigger: CronTrigger, since: datetime, now: datetime) -> list[datetime]:
    """The scheduled fire times from ``since`` to ``now`` (both included), oldest first."""
    times, candidate = [], trigger.get_next_fire_time(None, since)
    while candidate is not None and candidate <= now:
        times.append(candidate)
        candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
    return times


def due_periods(spec: JobSpec, now: datetime) -> list[tuple[Period, datetime]]:
    """Oldest first, the periods to run at ``now`` (``_periods_in_lookback``) whose claim is missing or
    failed, each with its scheduled fire time."""
    scheduled = _periods_in_lookback(spec, now)
    candidates = sorted(scheduled, key=lambda period: (period.end, period.start))
    status = dict(db.session.execute(sa.select(JobRun.period, JobRun.status).where(
        JobRun.job_id == spec.id, JobRun.period.in_([period.key for period in candidates]))).all())
    if spec.in_order:
        # A period already settled after an unsettled one (by hand, or before this lookback existed): running
        # the older one now would take a balance the later run has already taken from.
        done = [index for index, period in enumerate(candidates) if _settled(status.get(period.key))]
        candidates = candidates[done[-1] + 1:] if done else candidates
    return [(period, scheduled[period]) for period in candidates if not _settled(status.get(period.key))]


def _periods_in_lookback(spec: JobSpec, now: datetime) -> dict[Period, datetime]:
    """The periods the fire times within the job's lookback settle, each with its scheduled fire time (the
    first at or after its end): the latest, and those scheduled within the lookback. A monthly firing also
    settles the year (or quarter) before; January's does not settle the year before last again."""
    trigger, since = trigger_for(spec), now - spec.lookback
    periods = [settled_period(spec, time) for time in fire_times(trigger, since, now)]
    periods = [period for period in periods if period is not None]
    scheduled = {period: trigger.get_next_fire_time(None, period.end) for period in periods}
    return {period: time for period, time in scheduled.items() if time >= since or period == periods[-1]}


def settled_period(spec: JobSpec, fire_time: datetime) -> Period | None:
    """The period ``fire_time`` settles, or None. Its kind comes from the policy in force just before the fire
    day starts (inside the period that has just ended, whatever its kind), as the run's rule comes from the
    policy at the period's end: both from one version, also when a version changing the kind takes effect on
    the 1st. A period whose own end's policy settles another kind is not settled (after monthly decay turns
    quarterly, the months after the switch would ask for a quarter whose months are decayed already)."""
    ended = local_midnight(fire_time.astimezone(LOCAL_TZ).date()) - ONE_TICK
    period = spec.period_for(fire_time, policy_in_force(ended))
    if period is None or spec.settles(policy_in_force(period.last_instant)) != period.kind:
        return None
    return period


def _settled(status: JobRunStatus | None) -> bool:
    return status is not None and status != JobRunStatus.FAILED


def fire(app, job_id: str, now: datetime | None = None) -> list[dict]:
    """Run a job for every period due at ``now`` (``due_periods``), oldest first: used by triggers and
    catch-up. Returns what ran (job, period, scheduled_for, status), oldest first; empty when nothing was due."""
    spec = JOBS_BY_ID[job_id]
    with app.app_context():
        if not spec.claimed:
            return [run_unclaimed(spec)]
        ran = []
        for period, fire_time in due_periods(spec, now or utcnow()):
            result = _run_period(spec, period, fire_time)
            if result is None:
                continue  # another scheduler settled it meanwhile
            ran.append(result)
            if result["status"] == "failed" and spec.in_order:
                break  # later periods wait for this one's balance (JobSpec.in_order)
        return ran


def _run_period(spec: JobSpec, period: Period, fire_time: datetime) -> dict | None:
    try:
        run = run_job(spec, period, scheduled_for=fire_time)
    except Exception:
        log.exception("job %s failed for %s", spec.id, period.key)  # recorded in job_runs; the scheduler goes on
        return {"job": spec.id, "period": period.key, "scheduled_for": fire_time, "status": "failed"}
    if run is None:
        return None
    return {"job": spec.id, "period": period.key, "scheduled_for": fire_time, "status": str(run.status)}


def catch_up(app, now: datetime | None = None) -> None:
    """At start-up, each job settles what its lookback holds missing or failed, as on any firing (claims skip
    what is settled): downtime shorter than the lookback loses no period."""
    for spec in JOBS:
        fire(app, spec.id, now)


def run_scheduler(app) -> None:
    scheduler = BlockingScheduler(timezone=LOCAL_TZ)
    for spec in JOBS:
        scheduler.add_job(fire, trigger_for(spec), args=[app, spec.id], id=spec.id, name=spec.description,
                          coalesce=True, max_instances=1, misfire_grace_time=6 * 3600)
    catch_up(app)
    log.info("scheduler started with jobs: %s", ", ".join(spec.id for spec in JOBS))
    scheduler.start()
