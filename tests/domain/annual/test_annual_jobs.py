"""The annual jobs: January's settlement of the previous year (once), then the export files."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.periods import parse_period
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.jobs.scheduler import fire
from points_service.models import AnnualSettlement, JobRun, JobRunStatus
from tests.factories import make_world
from tests.factories.annual import YEAR, reported, score, settled
from tests.factories.ledger import local


def test_the_settlement_job_settles_the_year_that_ended_once(app):
    world = make_world()
    score(world, world["alice"], 93)
    ran = fire(app, "annual_settlement", now=local(YEAR + 1, 1, 1, 3, 5))
    # the year before, which November's and December's firings settle, was due long before the lookback
    assert [(run["period"], run["status"]) for run in ran] == [(str(YEAR), "succeeded")]
    assert fire(app, "annual_settlement", now=local(YEAR + 1, 2, 1, 3, 5)) == []  # monthly firing: claimed
    settlement = db.session.scalar(sa.select(AnnualSettlement))
    # alice, bob and carol, on the roster since before the year (only alice scored)
    assert settlement.year == YEAR and settlement.settled_by_id is None and settlement.member_count == 3


def test_the_job_skips_a_year_an_admin_already_settled(app):
    world = make_world()
    settled(world)
    run = run_job(JOBS_BY_ID["annual_settlement"], parse_period(str(YEAR)))
    assert run.result == {"skipped": "already_settled"}


def test_the_export_job_writes_csv_and_xlsx_for_members_and_organizations(app, tmp_path):
    app.config["EXPORT_DIR"] = str(tmp_path)
    world = make_world()
    score(world, world["alice"], 93)
    reported(world["alice"])
    run_job(JOBS_BY_ID["annual_settlement"], parse_period(str(YEAR)))
    run = run_job(JOBS_BY_ID["annual_export"], parse_period(str(YEAR)))
    assert run.result["files"] == {f"annual-{YEAR}-member.csv": 3, f"annual-{YEAR}-member.xlsx": 3,
                                   f"annual-{YEAR}-organization.csv": 2, f"annual-{YEAR}-organization.xlsx": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(run.result["files"])
    assert (tmp_path / f"annual-{YEAR}-member.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_the_export_job_fails_and_is_retried_while_the_year_is_not_settled(app, tmp_path):
    app.config["EXPORT_DIR"] = str(tmp_path)
    make_world()
    try:
        run_job(JOBS_BY_ID["annual_export"], parse_period(str(YEAR)))
    except RuntimeError as exc:
        assert "尚未结算" in str(exc)
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job_id == "annual_export"))
    assert run.status == JobRunStatus.FAILED and list(tmp_path.iterdir()) == []


def test_an_export_job_failing_midway_leaves_only_the_files_it_completed(app, tmp_path, monkeypatch):
    from points_service.domain.exports import files

    app.config["EXPORT_DIR"] = str(tmp_path)
    world = make_world()
    score(world, world["alice"], 93)
    run_job(JOBS_BY_ID["annual_settlement"], parse_period(str(YEAR)))
    real, calls = files.annual_rows, []

    def rows(export):  # the second file's rows fail after the first (a database error mid-export)
        calls.append(export)
        iterator = iter(real(export))
        yield next(iterator)
        if len(calls) == 2:
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        yield from iterator

    monkeypatch.setattr(files, "annual_rows", rows)
    with contextlib.suppress(sa.exc.OperationalError):
        run_job(JOBS_BY_ID["annual_export"], parse_period(str(YEAR)))
    db.session.rollback()
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job_id == "annual_export"))
    assert run.status == JobRunStatus.FAILED  # retried at its next firing
    assert [p.name for p in tmp_path.iterdir()] == [f"annual-{YEAR}-member.csv"]  # no half file, no temporary one
    assert len((tmp_path / f"annual-{YEAR}-member.csv").read_bytes().decode("utf-8-sig").splitlines()) == 1 + 3
