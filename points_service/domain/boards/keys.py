"""Pure naming of boards, buckets and scopes: which boards an entry moves, and by how much.

Boards exist for every period kind a ``PointTotal`` is kept for (month, quarter, half, year of the assessment
ledger) and for the standing score (``standing:all``). Scores are integer hundredths.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from points_service.db import sql_constant
from points_service.domain.periods import TOTAL_KINDS, Period
from points_service.models import ALL_TIME, LedgerName

STANDING = "standing"
STANDING_BOARD = f"{LedgerName.STANDING}:{ALL_TIME}"
BOARD_PERIOD_KINDS = TOTAL_KINDS  # year, half, quarter, month
HIDDEN_NAME = "党员（已隐藏）"


def board_key(period: Period | str) -> str:
    """``assessment:2026-Q3`` for a period, ``standing:all`` for the standing score."""
    if period == STANDING:
        return STANDING_BOARD
    return f"{LedgerName.ASSESSMENT}:{period}"


def period_of_board(board: str) -> str:
    return STANDING if board == STANDING_BOARD else board.partition(":")[2]


def to_cents(points) -> int:
    return int(points * 100)


def board_deltas(contributions: Iterable) -> dict[str, int]:
    """What each board's score moves by for an entry's ``totals.contributions`` (hundredths).

    Assessment boards follow ``PointTotal.net`` (scoring entries; a reset does not change what was earned in a
    period); the standing board follows the standing balance (scoring entries and decay). A board the entry does
    not move is left out: an entry of zero points, or the yearly reset on the new year's boards, puts nobody on a
    board (``staging.ON_BOARD`` rebuilds them so)."""
    deltas: dict[str, int] = {}
    for c in contributions:
        if c.ledger == LedgerName.ASSESSMENT and c.period != ALL_TIME:
            deltas[board_key(c.period)] = to_cents(c.earned + c.deducted)
        elif c.ledger == LedgerName.STANDING and c.period == ALL_TIME:
            deltas[STANDING_BOARD] = deltas.get(STANDING_BOARD, 0) + to_cents(c.earned + c.deducted + c.settled)
    return {board: delta for board, delta in deltas.items() if delta}


def bucket_of(score: int) -> int:
    """The 1-point bucket of a score in hundredths; floor division, so -0.50 is in bucket -1."""
    return score // 100


def bucket_sql(score) -> sa.ColumnElement:
    """``bucket_of`` in SQL on both engines (their integer division truncates toward zero)."""
    zero, hundred, ninety_nine = sql_constant(0), sql_constant(100), sql_constant(99)
    return sa.case((score >= zero, score // hundred), else_=-((-score + ninety_nine) // hundred))


class ScopeKind(enum.StrEnum):
    ALL = "all"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"
    DEPARTMENT = "department"
    BRANCH = "branch"


# Scopes that can hold many thousands of members keep histograms; the small ones count on an index.
HISTOGRAM_KINDS = (ScopeKind.ALL, ScopeKind.DISTRICT, ScopeKind.STREET, ScopeKind.DEPARTMENT)
COUNTED_KINDS = (ScopeKind.COMMUNITY, ScopeKind.GRID, ScopeKind.BRANCH)
# The order scopes are listed in "my ranks", smallest first.
MEMBER_SCOPE_ORDER = (ScopeKind.GRID, ScopeKind.COMMUNITY, ScopeKind.STREET, ScopeKind.DISTRICT, ScopeKind.ALL,
                      ScopeKind.BRANCH, ScopeKind.DEPARTMENT)
SCOPE_NAMES = {ScopeKind.ALL: "全市", ScopeKind.DISTRICT: "区县", ScopeKind.STREET: "街道",
               ScopeKind.COMMUNITY: "社区", ScopeKind.GRID: "网格", ScopeKind.DEPARTMENT: "部门党组织",
               ScopeKind.BRANCH: "党支部"}


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    id: int | None = None

    @property
    def column(self) -> str | None:
        """The ``board_scores`` column that holds this scope's id (None for the whole city)."""
        return None if self.kind is ScopeKind.ALL else f"{self.kind}_id"

    @property
    def histogram_key(self) -> str | None:
        if self.kind is ScopeKind.ALL:
            return "city"
        return f"{self.kind}:{self.id}" if self.kind in HISTOGRAM_KINDS else None

    def __str__(self) -> str:
        return "all" if self.kind is ScopeKind.ALL else f"{self.kind}:{self.id}"


CITY = Scope(ScopeKind.ALL)


@dataclass(frozen=True)
class Placement:
    """Where a subject sits on a board: the ids copied into the scope columns of its row."""

    district_id: int | None = None
    street_id: int | None = None
    community_id: int | None = None
    grid_id: int | None = None
    branch_id: int | None = None
    department_id: int | None = None

    def as_row(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def scopes(self) -> list[Scope]:
        """Every scope this placement belongs to, the city first."""
        kinds = [(ScopeKind(name.removesuffix("_id")), value) for name, value in self.as_row().items()]
        return [CITY, *(Scope(kind, value) for kind, value in kinds if value is not None)]

    def histogram_keys(self) -> list[str]:
        return sorted(scope.histogram_key for scope in self.scopes() if scope.histogram_key)


def placement_of_row(row) -> Placement:
    return Placement(**{name: getattr(row, name) for name in Placement.__dataclass_fields__})


def competition_ranks(scores: list[int]) -> list[int]:
    """Ranks of scores already sorted high to low: ties share a rank and the next rank skips (1, 2, 2, 4)."""
    ranks: list[int] = []
    for index, score in enumerate(scores):
        ranks.append(ranks[-1] if index and score == scores[index - 1] else index + 1)
    return ranks
