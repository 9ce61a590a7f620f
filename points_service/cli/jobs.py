"""``flask jobs run`` (the scheduler process), ``flask jobs run-once ID --period P``, ``flask jobs list``."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from points_service.db import db, utcnow
from points_service.domain.periods import BadPeriod, Period, PeriodKind, parse_period
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job, run_unclaimed
from points_service.jobs.schedule import JOBS, JOBS_BY_ID, JobSpec
from points_service.jobs.scheduler import run_scheduler
from points_service.models import JobRun, JobRunStatus

jobs_cli = AppGroup("jobs", help="Scheduled jobs (decay, reset, expiry, ...).")


@jobs_cli.command("run")
def run_command():
    """Run the scheduler in the foreground: one such process per deployment."""
    run_scheduler(current_app._get_current_object())


@jobs_cli.command("run-once")
@click.argument("job_id", type=click.Choice(sorted(JOBS_BY_ID)))
@click.option("--period", required=True, help="The period to settle, e.g. 2026-11, 2026-Q3, 2026.")
def run_once_command(job_id, period):
    """Run one job for one period now (skipped if that period already succeeded)."""
    if not JOBS_BY_ID[job_id].claimed:
        click.echo(f"{job_id}: {run_unclaimed(JOBS_BY_ID[job_id])}")
        return
    try:
        settled = parse_period(period)
    except BadPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    _check_settleable(JOBS_BY_ID[job_id], settled)
    run = run_job(JOBS_BY_ID[job_id], settled)
    if run is None:
        click.echo(f"{job_id} {settled.key}: already done, nothing to do")
    else:
        click.echo(f"{job_id} {settled.key}: {run.status} {run.result}")


def _check_settleable(spec: JobSpec, period: Period) -> None:
    """Only a period the scheduler itself could settle: one that has ended, of the kind the policy in force at
    its end gives the job (a month of a yearly reset would zero every balance mid-year; a day not over yet
    would apply tomorrow's scheduled changes today), and for decay and reset none older than a period already
    settled (a decay would compound on a balance the later one has decayed, a reset zero it again); expiry
    months give the same result in any order (``JobSpec.any_order``)."""
    kind = spec.settles(policy_in_force(period.last_instant))
    if kind is None:
        raise click.BadParameter(f"{spec.id} is switched off by the policy in force at {period.key}'s end",
                                 param_hint="--period")
    if PeriodKind(kind) != period.kind:
        raise click.BadParameter(f"{spec.id} settles {kind} periods (under the policy in force at its end), "
                                 f"not {period.kind}: {period.key}", param_hint="--period")
    if period.end > utcnow():
        raise click.BadParameter(f"{period.key} has not ended yet", param_hint="--period")
    if spec.in_order and not spec.any_order:
        later = _later_settled(spec, period)
        if later is not None:
            raise click.BadParameter(
                f"{spec.id} {later} is already settled: {period.key} cannot be settled after it (each period is "
                f"computed from the balance the previous one left, and {later} has already taken from it)",
                param_hint="--period")


def _later_settled(spec: JobSpec, period: Period) -> str | None:
    """The latest period of ``spec`` ending after ``period`` whose run has not failed (a failed run wrote nothing
    and does not count), or None."""
    keys = db.session.scalars(sa.select(JobRun.period).where(JobRun.job_id == spec.id,
                                                             JobRun.status != JobRunStatus.FAILED))
    later = [other for other in map(parse_period, keys) if other.end > period.end]
    return max(later, key=lambda other: (other.end, other.start)).key if later else None


@jobs_cli.command("list")
def list_command():
    """The declared jobs and their latest runs."""
    for spec in JOBS:
        click.echo(f"{spec.id:20} {spec.cron}  {spec.description}")
        runs = db.session.scalars(sa.select(JobRun).where(JobRun.job_id == spec.id)
                                  .order_by(JobRun.started_at.desc()).limit(3))
        for run in runs:
            click.echo(f"    {run.period:10} {run.status:10} attempts={run.attempts} {run.result or run.error or ''}")
