"""Pure rules of the boards: competition ranks, buckets, which boards an entry moves, scope keys."""

from __future__ import annotations

from decimal import Decimal

from points_service.domain.boards.keys import (
    STANDING_BOARD,
    Placement,
    Scope,
    ScopeKind,
    board_deltas,
    board_key,
    bucket_of,
    competition_ranks,
)
from points_service.domain.ledger.totals import Contribution
from points_service.domain.periods import parse_period
from points_service.models import LedgerName


def test_competition_ranks_of_90_80_80_70_are_1_2_2_4():
    assert competition_ranks([90, 80, 80, 70]) == [1, 2, 2, 4]
    assert competition_ranks([5, 5, 5]) == [1, 1, 1]
    assert competition_ranks([]) == []


def test_a_bucket_key_floors_negative_scores():
    assert [bucket_of(s) for s in (-50, -100, -101, 0, 99, 100, 250)] == [-1, -1, -2, 0, 0, 1, 2]


def test_an_assessment_award_moves_every_period_board_and_the_standing_board():
    parts = [Contribution(LedgerName.ASSESSMENT, p, earned=Decimal("2.5"))
             for p in ("2026", "2026-H2", "2026-Q3", "2026-09", "all")]
    parts.append(Contribution(LedgerName.STANDING, "all", earned=Decimal("2.5")))
    assert board_deltas(parts) == {"assessment:2026": 250, "assessment:2026-H2": 250, "assessment:2026-Q3": 250,
                                   "assessment:2026-09": 250, STANDING_BOARD: 250}


def test_a_reset_moves_no_board_and_decay_moves_only_the_standing_board():
    reset = [Contribution(LedgerName.ASSESSMENT, "2026", settled=Decimal(-9))]
    decay = [Contribution(LedgerName.STANDING, p, settled=Decimal(-1)) for p in ("2026", "2026-Q3", "all")]
    assert board_deltas(reset) == {}  # nor puts anyone on the period's board
    assert board_deltas(decay) == {STANDING_BOARD: -100}


def test_board_keys_name_the_ledger_and_the_period():
    assert board_key(parse_period("2026-Q3")) == "assessment:2026-Q3"
    assert board_key("standing") == STANDING_BOARD


def test_large_scopes_have_histogram_keys_and_small_ones_count():
    where = Placement(district_id=2, street_id=3, community_id=4, grid_id=6, branch_id=8, department_id=7)
    assert where.histogram_keys() == ["city", "department:7", "district:2", "street:3"]
    community = Scope(ScopeKind.COMMUNITY, 4)
    assert community.histogram_key is None and community.column == "community_id"
    assert len(where.scopes()) == 7
