"""Running one job for one period exactly once, whatever the number of schedulers or retries.

The claim row (UNIQUE job_id, period) is inserted in the SAME transaction as the job's work: a second
scheduler's insert waits on the unique index and then finds the period done; a crash rolls back both
claim and work, so a re-run completes it. Failures are recorded (status ``failed``) and retried on the
next firings that look back over it (scheduler.due_periods).
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain.audit import audit
from points_service.domain.periods import Period
from points_service.domain.policy import policy_in_force
from points_service.jobs.schedule import JobSpec
from points_service.models import JobRun, JobRunStatus

log = logging.getLogger(__name__)


def run_job(spec: JobSpec, period: Period, *, scheduled_for: datetime | None = None) -> JobRun | None:
    """Run ``spec`` for ``period`` unless it already succeeded. Returns the run, or None if skipped."""
    policy = policy_in_force(period.last_instant)
    claim = _claim(spec.id, period, scheduled_for)
    if claim is None:
        db.session.rollback()
        return None
    try:
        result = spec.run(period, policy)
        claim.status, claim.result, claim.finished_at = JobRunStatus.SUCCEEDED, result, utcnow()
        audit("job.run", target_type="job_runs", target_id=f"{spec.id}:{period.key}", detail=result)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        _record_failure(spec.id, period, scheduled_for, exc)
        raise
    log.info("job %s settled %s: %s", spec.id, period.key, result)
    return claim


def run_unclaimed(spec: JobSpec) -> dict:
    """Run a job that claims no period (it does what is due and is idempotent by itself); failures are logged
    and the next firing tries again."""
    try:
        result = spec.run(None, None)
    except Exception:
        db.session.rollback()
        log.exception("job %s failed", spec.id)
        return {"job": spec.id, "status": "failed"}
    log.info("job %s ran: %s", spec.id, result)
    return {"job": spec.id, "status": "succeeded", "result": result}


def _claim(job_id: str, period: Period, scheduled_for: datetime | None) -> JobRun | None:
    existing = db.session.scalar(
        sa.select(JobRun).where(JobRun.job_id == job_id, JobRun.period == period.key).with_for_update())
    if existing is not None:
        if existing.status != JobRunStatus.FAILED:
            return None
        existing.status, existing.attempts, existing.error = JobRunStatus.RUNNING, existing.attempts + 1, None
        return existing
    claim = JobRun(job_id=job_id, period=period.key, status=JobRunStatus.RUNNING, scheduled_for=scheduled_for)
    try:
        with db.session.begin_nested():
            db.session.add(claim)
            db.session.flush()
    except IntegrityError:
        return None  # another scheduler claimed (and finished) this period
    return claim


def _record_failure(job_id: str, period: Period, scheduled_for: datetime | None, exc: Exception) -> None:
    error = "".join(traceback.format_exception_only(type(exc), exc))[-2000:]
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job_id == job_id, JobRun.period == period.key))
    if run is None:
        run = JobRun(job_id=job_id, period=period.key, scheduled_for=scheduled_for, attempts=1)
        db.session.add(run)
    else:  # a retry of a failed period: the claim's count was rolled back with the work
        run.attempts += 1
    run.status, run.error, run.finished_at = JobRunStatus.FAILED, error, utcnow()
    audit("job.run", target_type="job_runs", target_id=f"{job_id}:{period.key}", result="failed",
          detail={"error": error[:500]})
    db.session.commit()
    log.error("job %s failed for %s: %s", job_id, period.key, error.strip())
