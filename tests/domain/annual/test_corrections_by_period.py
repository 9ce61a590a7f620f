"""Adjustments naming the period they correct: a settled year's corrections are exactly the adjustments naming a
period of that year (whenever credited) plus, as before, those naming none in the year after; an adjustment
correcting another year never counts in the year it was credited. Checked against a naive computation."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.annual.settlement import corrections_after_settlement, settle_year
from points_service.domain.errors import ValidationFailed
from points_service.domain.ledger.corrections import adjust
from points_service.domain.periods import parse_period
from points_service.models import AnnualStatement, EntryKind, LedgerEntry, LedgerName, SubjectType
from tests.factories import make_world
from tests.factories.annual import YEAR, admin_of, reported, score, settled
from tests.factories.ledger import local


@pytest.fixture
def world(app):
    world = make_world()
    reported(world["alice"], world["bob"], world["carol"])
    return world


def correct(world, member, points, at, period=None):
    return adjust(admin_of(world), SubjectType.MEMBER, member.id, Decimal(points), "更正",
                  request_key=uuid.uuid4().hex, at=at, period=parse_period(period) if period else None)


def naive_year_of(entry: LedgerEntry) -> int | None:
    """The year an adjustment credited after 2025 corrects or scores in, computed the plain way."""
    if entry.corrects_period:
        return int(entry.corrects_period[:4])
    return entry.credited_at.astimezone(local(2025, 1, 1).tzinfo).year


def naive_corrections(member, year: int) -> Decimal:
    entries = db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.subject_id == member.id, LedgerEntry.kind == EntryKind.ADJUSTMENT,
        LedgerEntry.credited_at >= local(year + 1, 1, 1))).all()
    return sum((e.points for e in entries if (int(e.corrects_period[:4]) == year if e.corrects_period
                                               else e.credited_at < local(year + 2, 1, 1))), Decimal("0.00"))


def test_a_settled_years_corrections_are_exactly_the_adjustments_attributed_to_it(world):
    alice = world["alice"]
    score(world, alice, 85)
    settlement = settled(world)
    correct(world, alice, 6, local(YEAR + 1, 2, 1))  # no period: the year after, as before
    correct(world, alice, 4, local(YEAR + 2, 3, 1), "2025-Q4")  # two years on, but naming 2025
    correct(world, alice, -2, local(YEAR + 1, 3, 1), "2026-Q1")  # the next year's own business
    correct(world, alice, 5, local(YEAR + 1, 4, 1), "2025")
    found = corrections_after_settlement(settlement, SubjectType.MEMBER, [alice.id])[alice.id]
    assert found["points"] == naive_corrections(alice, YEAR) == Decimal("15.00")
    assert [e["corrects_period"] for e in found["entries"]] == [None, "2025-Q4", "2025"]
    assert db.session.scalar(sa.select(AnnualStatement.total).where(
        AnnualStatement.year == YEAR, AnnualStatement.subject_id == alice.id)) == Decimal("85.00")  # frozen


def test_an_adjustment_correcting_another_year_does_not_count_in_the_year_it_was_credited(world):
    alice = world["alice"]
    score(world, alice, 85)
    settled(world)
    correct(world, alice, 6, local(YEAR + 1, 2, 1))
    correct(world, alice, -2, local(YEAR + 1, 3, 1), "2026-Q1")
    correct(world, alice, 5, local(YEAR + 1, 4, 1), "2025")
    settle_year(admin_of(world), YEAR + 1, now=local(YEAR + 2, 1, 2))
    in_2026 = [e for e in db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.subject_id == alice.id, LedgerEntry.ledger == LedgerName.ASSESSMENT)).all()
        if local(YEAR + 1, 1, 1) <= e.credited_at < local(YEAR + 2, 1, 1) and naive_year_of(e) == YEAR + 1]
    total = db.session.scalar(sa.select(AnnualStatement.total).where(
        AnnualStatement.year == YEAR + 1, AnnualStatement.subject_id == alice.id))
    assert total == sum(e.points for e in in_2026) == Decimal("4.00")


def test_a_correction_names_a_period_that_has_begun_and_only_for_assessment_points(world):
    with pytest.raises(ValidationFailed) as future:
        correct(world, world["alice"], 3, local(YEAR + 1, 2, 1), "2026-Q2")
    assert "period" in future.value.data["errors"]
    with pytest.raises(ValidationFailed):
        adjust(admin_of(world), SubjectType.MEMBER, world["alice"].id, Decimal(3), "更正", request_key="k",
               ledger=LedgerName.REDEEMABLE, at=local(YEAR + 1, 2, 1), period=parse_period("2025"))
