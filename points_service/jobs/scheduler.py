"""The one scheduler process (``flask jobs run``): never started inside create_app, because under
gunicorn every worker would run every job. A second process is harmless anyway (claim rows)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from points_service.db import utcnow
from points_service.domain.periods import LOCAL_TZ
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job, run_unclaimed
from points_service.jobs.schedule import JOBS, JOBS_BY_ID, JobSpec

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=40)  # every job fires at least monthly


def trigger_for(spec: JobSpec) -> CronTrigger:
    return CronTrigger(timezone=LOCAL_TZ, **spec.cron)


def last_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest scheduled fire time at or before ``now``: what a late or catch-up run settles."""
    latest, candidate = None, trigger.get_next_fire_time(None, now - LOOKBACK)
    while candidate is not None and candidate <= now:
        latest = candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
    return latest


def fire(app, job_id: str, now: datetime | None = None) -> dict | None:
    """Run a job for the period its latest scheduled fire time settles (used by triggers and catch-up).

    Returns what ran (job, period, scheduled_for, status), or None when there was nothing to do."""
    spec = JOBS_BY_ID[job_id]
    with app.app_context():
        if not spec.claimed:
            return run_unclaimed(spec)
        fire_time = last_fire_time(trigger_for(spec), now or utcnow())
        if fire_time is None:
            return None
        period = spec.period_for(fire_time, policy_in_force(fire_time))
        if period is None:
            return None
        try:
            run = run_job(spec, period, scheduled_for=fire_time)
        except Exception:
            log.exception("job %s failed", job_id)  # recorded in job_runs; the scheduler keeps going
            return {"job": job_id, "period": period.key, "scheduled_for": fire_time, "status": "failed"}
        if run is None:
            return None
        return {"job": job_id, "period": period.key, "scheduled_for": fire_time, "status": str(run.status)}


def catch_up(app, now: datetime | None = None) -> None:
    """After a restart, each job's most recent missed period is run once (claims skip settled ones)."""
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
