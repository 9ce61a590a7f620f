"""Operator commands of the points engine: rebuild proves totals; run-once settles one period."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.models import EntryKind, JobRun, JobRunStatus, LedgerEntry
from tests.factories import make_world
from tests.factories.ledger import local, member_fact


def test_rebuild_reports_no_difference_then_finds_and_fixes_a_tampered_total(app):
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2026, 11, 2))
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["points", "rebuild"])
    assert clean.exit_code == 0 and "0 difference(s)" in clean.output
    db.session.execute(sa.text("UPDATE point_totals SET settled = settled - 100 WHERE period = 'all'"))
    db.session.commit()
    dirty = runner.invoke(args=["points", "rebuild"])
    assert dirty.exit_code == 1 and "3 difference(s)" in dirty.output
    fixed = runner.invoke(args=["points", "rebuild", "--fix"])
    assert fixed.exit_code == 0 and "fixed" in fixed.output
    assert runner.invoke(args=["points", "rebuild"]).exit_code == 0


def test_run_once_settles_the_named_period_and_a_second_call_does_nothing(app):
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2026, 10, 2))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-10"])
    assert first.exit_code == 0 and "succeeded" in first.output
    second = runner.invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-10"])
    assert "already done" in second.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1
    assert len(db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.DECAY)).all()) == 1


def test_run_once_refuses_a_malformed_period_and_an_unknown_job(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-Q9"]).exit_code == 2
    assert runner.invoke(args=["jobs", "run-once", "nope", "--period", "2026-10"]).exit_code == 2



def test_run_once_refuses_a_period_the_job_does_not_settle_and_writes_nothing(app):
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2026, 10, 2))
    runner = app.test_cli_runner()
    for job_id, period, why in (("assessment_reset", "2026-10", "settles year periods"),  # a mid-year reset
                                ("standing_decay", "2026", "settles month periods"),  # a year's decay on top
                                ("redeemable_expiry", "2026-Q3", "settles month periods"),
                                ("standing_decay", "2199-01", "has not ended yet"),
                                ("member_changes", "2199-01-01", "has not ended yet")):  # changes due in 2199
        refused = runner.invoke(args=["jobs", "run-once", job_id, "--period", period])
        assert refused.exit_code == 2 and why in refused.output, (job_id, period, refused.output)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.kind != EntryKind.AWARD)) == 0

def test_jobs_list_shows_every_declared_job(app):
    output = app.test_cli_runner().invoke(args=["jobs", "list"]).output
    for job_id in ("standing_decay", "assessment_reset", "redeemable_expiry"):
        assert job_id in output


def entries_of(kind: EntryKind) -> list[LedgerEntry]:
    return db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == kind).order_by(LedgerEntry.id)).all()


def test_run_once_refuses_a_decay_month_older_than_one_settled_and_writes_nothing(app):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 10, 5, 9))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-11"]).exit_code == 0
    before = [(entry.source_id, entry.points) for entry in entries_of(EntryKind.DECAY)]
    refused = runner.invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-10"])
    assert refused.exit_code == 2 and "2026-11 is already settled" in refused.output, refused.output
    assert [(entry.source_id, entry.points) for entry in entries_of(EntryKind.DECAY)] == before
    assert db.session.scalars(sa.select(JobRun.period)).all() == ["2026-11"]


def test_run_once_refuses_a_reset_year_older_than_one_settled(app):
    db.session.add(JobRun(job_id="assessment_reset", period="2025", status=JobRunStatus.SUCCEEDED))
    db.session.commit()
    refused = app.test_cli_runner().invoke(args=["jobs", "run-once", "assessment_reset", "--period", "2024"])
    assert refused.exit_code == 2 and "2025 is already settled" in refused.output, refused.output
    assert db.session.scalars(sa.select(JobRun.period)).all() == ["2025"]
    assert entries_of(EntryKind.RESET) == []


def test_run_once_settles_an_expiry_month_older_than_one_settled(app):
    """Expiry months give the same result in any order (docs/ledger.md): October after November is allowed."""
    award(member_fact(make_world()["alice"], "member.micro_wish"), at=local(2025, 10, 5, 9))  # old at October's end
    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "run-once", "redeemable_expiry", "--period", "2026-11"]).exit_code == 0
    october = runner.invoke(args=["jobs", "run-once", "redeemable_expiry", "--period", "2026-10"])
    assert october.exit_code == 0 and "succeeded" in october.output, october.output
    assert sorted(db.session.scalars(sa.select(JobRun.period).where(JobRun.status == JobRunStatus.SUCCEEDED))) == [
        "2026-10", "2026-11"]
    assert sum(entry.points for entry in entries_of(EntryKind.EXPIRY)) == Decimal(-5)


def test_a_failed_later_run_does_not_block_an_older_decay_month(app):
    award(member_fact(make_world()["alice"], "member.commend_city"), at=local(2026, 10, 5, 9))
    db.session.add(JobRun(job_id="standing_decay", period="2026-11", status=JobRunStatus.FAILED, error="boom"))
    db.session.commit()
    october = app.test_cli_runner().invoke(args=["jobs", "run-once", "standing_decay", "--period", "2026-10"])
    assert october.exit_code == 0 and "succeeded" in october.output, october.output
    assert [entry.source_id for entry in entries_of(EntryKind.DECAY)] == ["standing_decay:2026-10"]
