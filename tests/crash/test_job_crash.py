"""Crash safety of the jobs process: ``flask jobs run-once`` is SIGKILLed while its transaction is open (its
claim written, its entries being written), several times at random moments. After each kill the period is
either not claimed and has no entries, or claimed as succeeded with all of them: the claim and the entries
commit together or not at all. A last run then settles it, and the totals equal the ledger."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.totals import rebuild_totals
from points_service.models import EntryKind, JobRun, JobRunStatus, LedgerEntry
from tests.conftest import PG_URL
from tests.crash.service import BIN, ROOT, crash_schema, schema_url, service_env
from tests.dbutil import app_on
from tests.factories import make_branch, make_city, make_department, make_member
from tests.factories.ledger import local, member_fact

pytestmark = [pytest.mark.postgres, pytest.mark.crash]

MEMBERS, KILLS, JOB, PERIOD = 400, 4, "assessment_reset", "2025"  # the reset is yearly
APPLICATION = "points-job-crash"


@pytest.fixture
def job_world():
    schema = f"crash_job_{os.getpid()}"
    with crash_schema(PG_URL, schema) as url:
        app = app_on(url)
        with app.app_context():
            city = make_city()
            branch = make_branch(make_department(city["north"]))
            for _ in range(MEMBERS):
                award(member_fact(make_member(branch, city["north"]), units=2), at=local(2025, 11, 2, 10))
            yield app, schema_url(PG_URL, schema, APPLICATION)
            db.engine.dispose()


def _job_connections(engine) -> tuple[int, int]:
    """(connections of the job process, those in a transaction that has written)."""
    with engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT count(*), count(backend_xid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION}).one()
    return row[0], row[1]


def _run_and_kill(url: str, engine, delay: float) -> bool:
    """Start the job; SIGKILL it ``delay`` s after its transaction first wrote. True if it was still running."""
    job = subprocess.Popen([str(BIN / "flask"), "jobs", "run-once", JOB, "--period", PERIOD], cwd=ROOT,
                           env=service_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 60
    while _job_connections(engine)[1] == 0 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    running = job.poll() is None
    if running:
        os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)
    while _job_connections(engine)[0]:  # PostgreSQL rolls the dead client's transaction back
        time.sleep(0.05)
    return running


def _state() -> tuple[str | None, int]:
    db.session.remove()
    run = db.session.scalar(sa.select(JobRun.status).where(JobRun.job_id == JOB, JobRun.period == PERIOD))
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.kind == EntryKind.RESET))
    return run, entries


def test_a_job_killed_mid_run_leaves_its_claim_and_entries_all_or_nothing(job_world):
    app, url = job_world
    engine, rng = sa.create_engine(PG_URL), random.Random(18)
    outcomes = []
    try:
        for _ in range(KILLS):
            killed = _run_and_kill(url, engine, rng.uniform(0.0, 0.4))
            with app.app_context():
                run, entries = _state()
            outcomes.append((killed, run, entries))
            assert (run, entries) in {(None, 0), (JobRunStatus.SUCCEEDED, MEMBERS)}, outcomes
            if run is not None:
                break
        finished = subprocess.run([str(BIN / "flask"), "jobs", "run-once", JOB, "--period", PERIOD], cwd=ROOT,
                                  env=service_env(url), capture_output=True, text=True, timeout=300)
    finally:
        engine.dispose()

    print(f"\njob kills (killed while running, claim, reset entries): {outcomes}")
    assert finished.returncode == 0, finished.stderr
    assert any(killed and run is None for killed, run, _ in outcomes), "no kill landed mid-run"
    with app.app_context():
        assert _state() == (JobRunStatus.SUCCEEDED, MEMBERS)
        assert rebuild_totals(fix=False) == []
