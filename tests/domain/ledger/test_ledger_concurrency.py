"""Concurrency on PostgreSQL: exactly-once crediting, honest caps and one job run under contention.

SQLite ignores FOR UPDATE and serializes writers, so these run on PostgreSQL only.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.boards.audit import compare_boards
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.totals import compare_totals, total_of
from points_service.domain.periods import parse_period
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import BoardScore, EntryKind, JobRun, LedgerEntry, LedgerName
from tests.concurrency import hammer
from tests.factories import make_member, make_world
from tests.factories.ledger import install_policy, local, member_fact

pytestmark = pytest.mark.postgres
NOV = local(2026, 11, 10, 10)



def test_two_hundred_concurrent_identical_awards_write_exactly_one_entry_per_ledger(app):
    alice = make_world()["alice"]
    fact = member_fact(alice, "member.micro_wish", source_id="wish-42")
    results = hammer(app, [lambda: [e.id for e in award(fact, at=NOV)]] * 200)
    assert len({tuple(sorted(ids)) for ids in results}) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 2
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(5)
    assert compare_totals() == []


def test_two_hundred_concurrent_distinct_awards_keep_the_total_equal_to_the_ledger_sum(app):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=None))
    alice = make_world()["alice"]
    facts = [member_fact(alice, "member.commend_city", source_id=f"c{n}") for n in range(200)]
    hammer(app, [lambda f=f: award(f, at=NOV) and None for f in facts])
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(2000)
    assert compare_totals() == []


def test_concurrent_awards_never_grant_beyond_the_monthly_cap(app):
    alice = make_world()["alice"]  # default policy: 30 positive points a month
    facts = [member_fact(alice, "member.commend_city", source_id=f"c{n}") for n in range(60)]
    hammer(app, [lambda f=f: award(f, at=NOV) and None for f in facts])
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(30)
    assert compare_totals() == []


def test_first_credits_of_a_branchs_members_at_once_create_and_place_every_board_row_once(app):
    """Forty members' first credits race to create their branch's and department's rollup rows and the shared
    histogram rows; each row a credit creates is placed in its transaction, and the boards equal a rebuild."""
    world = make_world()
    members = [make_member(world["fin1"], world["north"], world["north_grid"]) for _ in range(40)]
    db.session.commit()
    facts = [member_fact(member, "member.micro_wish", source_id=f"w{member.id}") for member in members]
    hammer(app, [lambda f=f: award(f, at=NOV) and None for f in facts])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BoardScore)
                             .where(BoardScore.department_id == -1)) == 0
    assert compare_boards() == [] and compare_totals() == []


def test_two_schedulers_firing_the_same_job_and_period_run_it_once(app):
    world = make_world()
    for member in (world["alice"], world["bob"]):
        award(member_fact(member, "member.micro_wish"), at=local(2026, 10, 3))
    spec, period = JOBS_BY_ID["standing_decay"], parse_period("2026-10")
    results = hammer(app, [lambda: run_job(spec, period) is not None] * 8, workers=8)
    assert results.count(True) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1
    decays = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.DECAY)).all()
    assert len(decays) == 2
