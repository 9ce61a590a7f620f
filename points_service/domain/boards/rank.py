"""Ranks without counting a city: competition rank = 1 + the number of subjects in the scope scoring higher.

Large member scopes (city, district, street, department) read that number off their histograms: the members
in buckets above mine plus those with a higher exact score inside my bucket (two bounded index range scans;
measured 0.19 ms median at 500k members). Communities, grids and branches (at most a few thousand members)
count on their ``(board, subject_type, scope, score DESC)`` index. Organizations (a few thousand) are counted.

Order inside a tie (pages): earlier ``reached_at`` first ("who reached the score first"), then smaller id;
per-capita and participation ties are ordered by id.
"""

from __future__ import annotations

import enum
import functools

import sqlalchemy as sa

from points_service.db import core_execute, db, sql_constant
from points_service.domain.boards.keys import (
    CITY,
    HISTOGRAM_KINDS,
    MEMBER_SCOPE_ORDER,
    Scope,
    ScopeKind,
    bucket_sql,
    placement_of_row,
)
from points_service.models import BoardBucket, BoardFine, BoardOrgMembers, BoardScore, SubjectType
from points_service.models.boards import SCOPE_COLUMNS


class Measure(enum.StrEnum):
    OWN = "own"  # the subject's own points
    PER_CAPITA = "per_capita"  # organizations: Σ members' points / active members (hundredths, truncated)
    PARTICIPATION = "participation"  # organizations: members with points > 0 / active members (basis points)


MEASURE_LABELS = {
    Measure.OWN: "本组织自身积分",
    Measure.PER_CAPITA: "党员人均积分（本组织党员积分之和 ÷ 在册党员数）",
    Measure.PARTICIPATION: "党员参与率（本期有积分的党员 ÷ 在册党员数）",
}


def measure_expression(measure: Measure) -> sa.ColumnElement:
    """The number a board is sorted by, in hundredths (participation in basis points: 1/100 of a percent)."""
    zero = sql_constant(0)
    members = sa.func.coalesce(BoardOrgMembers.members, zero)
    if measure is Measure.PER_CAPITA:
        return sa.case((members > zero, BoardScore.member_points // members), else_=zero)
    if measure is Measure.PARTICIPATION:
        return sa.case((members > zero, BoardScore.participants * sql_constant(10000) // members), else_=zero)
    return BoardScore.score


def board_rows(board, subject_type: SubjectType, kind: ScopeKind, scope_id=None) -> list:
    """The rows of one board in one scope (``board`` and ``scope_id`` may be values or bind parameters).
    Organization boards rank departments against each other, except inside a department
    (``organization:{id}``), where its branches are ranked."""
    clauses = [BoardScore.board == board, BoardScore.subject_type == sql_constant(subject_type)]
    if kind is not ScopeKind.ALL:
        clauses.append(getattr(BoardScore, f"{kind}_id") == scope_id)
    if subject_type == SubjectType.ORGANIZATION and kind is ScopeKind.DEPARTMENT:
        clauses.append(BoardScore.branch_id.is_not(None))
    elif subject_type == SubjectType.ORGANIZATION and kind is not ScopeKind.BRANCH:
        clauses.append(BoardScore.branch_id.is_(None))
    return clauses


def _with_members(statement: sa.Select, measure: Measure) -> sa.Select:
    if measure is Measure.OWN:
        return statement
    return statement.outerjoin(BoardOrgMembers, BoardOrgMembers.organization_id == BoardScore.subject_id)


def member_rank_sql(board, kind: ScopeKind, scope_id, histogram_key, score) -> sa.ColumnElement:
    """1 + members of a scope scoring above ``score`` on ``board``, as one SQL expression. The arguments are
    SQL expressions: literals for a given score, or the columns of the member's own row (``own_rank``)."""
    if kind in HISTOGRAM_KINDS:
        return _histogram_rank(board, histogram_key, score)
    higher = sa.select(sa.func.count()).where(
        *board_rows(board, SubjectType.MEMBER, kind, scope_id), BoardScore.score > score)
    # board_scores is counted afresh even inside a statement that reads board_scores too (a page)
    return sql_constant(1) + higher.correlate_except(BoardScore).scalar_subquery()


def _histogram_rank(board, key, score) -> sa.ColumnElement:
    """1 + the members in buckets above ``score``'s + those with a higher exact score inside its bucket."""
    bucket, zero = bucket_sql(score), sql_constant(0)
    buckets_above = sa.select(sa.func.coalesce(sa.func.sum(BoardBucket.n), zero)).where(
        BoardBucket.board == board, BoardBucket.scope_key == key, BoardBucket.bucket > bucket)
    higher_in_bucket = sa.select(sa.func.coalesce(sa.func.sum(BoardFine.n), zero)).where(
        BoardFine.board == board, BoardFine.scope_key == key, BoardFine.score > score,
        BoardFine.score < (bucket + sql_constant(1)) * sql_constant(100))
    return sql_constant(1) + buckets_above.scalar_subquery() + higher_in_bucket.scalar_subquery()


# -- a member's own rank, row and rank in one statement ------------------------------------------------------
# "My rank" is the hottest read of the mini-program. Its statements are built once per shape, with bind
# parameters, and run through Core: building and hashing an ORM statement per call cost ten times the
# database's 0.2 ms. The rank subqueries correlate on the member's own row, so one round trip reads both.

_MINE = BoardScore.__table__.alias("mine")


def _own_scope_id(kind: ScopeKind) -> sa.ColumnElement | None:
    return None if kind is ScopeKind.ALL else _MINE.c[f"{kind}_id"]


def _own_histogram_key(kind: ScopeKind) -> sa.ColumnElement:
    if kind is ScopeKind.ALL:
        return sql_constant(CITY.histogram_key)
    return sql_constant(f"{kind}:") + sa.cast(_own_scope_id(kind), sa.String)


def _own_rank(kind: ScopeKind) -> sa.ColumnElement:
    """The member's rank within his own scope of ``kind`` (NULL when his row has no such scope)."""
    rank = member_rank_sql(_MINE.c.board, kind, _own_scope_id(kind), _own_histogram_key(kind), _MINE.c.score)
    return rank if kind is ScopeKind.ALL else sa.case((_own_scope_id(kind).is_not(None), rank))


def _own_total(kind: ScopeKind) -> sa.ColumnElement:
    """How many members the member's own scope of ``kind`` holds on the board."""
    return scope_total_sql(_MINE.c.board, SubjectType.MEMBER, kind, _own_scope_id(kind), _own_histogram_key(kind))


def _own_rows(*columns) -> sa.Select:
    return sa.select(_MINE.c.board, _MINE.c.score, _MINE.c.reached_at, *(_MINE.c[c] for c in SCOPE_COLUMNS),
                     *columns).where(_MINE.c.subject_type == sql_constant(SubjectType.MEMBER),
                                     _MINE.c.subject_id == sa.bindparam("member_id"))


@functools.cache
def _own_rank_statement(kind: ScopeKind, with_total: bool) -> sa.Select:
    extra = [_own_total(kind).label("total")] if with_total else []
    return _own_rows(_own_rank(kind).label("rank"), *extra).where(_MINE.c.board == sa.bindparam("board"))


@functools.cache
def own_ranks_statement(boards: int) -> sa.Select:
    """The member's rows on ``boards`` boards with his rank in every scope of each (bind parameters
    ``member_id`` and those of ``board_params``): one fixed text per number of boards, since an expanding IN
    would rewrite the statement on every call."""
    ranks = (_own_rank(kind).label(f"rank_{kind}") for kind in MEMBER_SCOPE_ORDER)
    return _own_rows(*ranks).where(_MINE.c.board.in_([sa.bindparam(f"board_{i}") for i in range(boards)]))


def board_params(boards: list[str]) -> dict[str, str]:
    """The bind parameters of ``own_ranks_statement(len(boards))``."""
    return {f"board_{i}": board for i, board in enumerate(boards)}


def viewer_columns(kind: ScopeKind) -> tuple[sa.Label, sa.Label]:
    """``me_rank`` and ``me_points``: the viewer's rank and points in the scope a page is bound to (bind
    parameters ``board``, ``viewer_id``, ``scope_id``, ``histogram_key``), as scalar subqueries on his own row,
    so a page brings its "me" along (PostgreSQL runs each once per statement). NULL when the viewer is not on
    the board or not in that scope."""
    rank = member_rank_sql(_MINE.c.board, kind, sa.bindparam("scope_id"), sa.bindparam("histogram_key"),
                           _MINE.c.score)
    return _viewer_value(kind, rank).label("me_rank"), _viewer_value(kind, _MINE.c.score).label("me_points")


def _viewer_value(kind: ScopeKind, column: sa.ColumnElement) -> sa.ScalarSelect:
    clauses = [_MINE.c.board == sa.bindparam("board"), _MINE.c.subject_type == sql_constant(SubjectType.MEMBER),
               _MINE.c.subject_id == sa.bindparam("viewer_id")]
    if kind is not ScopeKind.ALL:
        clauses.append(_MINE.c[f"{kind}_id"] == sa.bindparam("scope_id"))
    return sa.select(column).where(*clauses).scalar_subquery()


def own_rank(board: str, member_id: int, kind: ScopeKind = ScopeKind.ALL, with_total: bool = False):
    """The member's row on ``board`` with ``rank`` in his own scope of ``kind`` (and that scope's ``total``):
    one statement. None when he is not on the board; ``rank`` is None when his row has no scope of that kind."""
    return core_execute(_own_rank_statement(kind, with_total), {"board": board, "member_id": member_id}).first()


def organization_rank_sql(board: str, scope: Scope, measure: Measure, value: int) -> sa.ColumnElement:
    higher = _with_members(sa.select(sa.func.count()).select_from(BoardScore), measure).where(
        *board_rows(board, SubjectType.ORGANIZATION, scope.kind, scope.id), measure_expression(measure) > value)
    return 1 + higher.scalar_subquery()


def rank_at(board: str, subject_type: SubjectType, scope: Scope, value: int,
            measure: Measure = Measure.OWN) -> int:
    """The competition rank a score (or measure value) has in a scope: one statement."""
    if subject_type == SubjectType.MEMBER:
        return db.session.scalar(sa.select(member_rank_sql(sa.literal(board), scope.kind, scope.id,
                                                           sa.literal(scope.histogram_key), sa.literal(value))))
    return db.session.scalar(sa.select(organization_rank_sql(board, scope, measure, value)))


def subject_row(board: str, subject_type: SubjectType, subject_id: int, measure: Measure = Measure.OWN):
    """The subject's board row with its measure value (``value``), or None when it is not on the board."""
    statement = sa.select(*BoardScore.__table__.c, measure_expression(measure).label("value")).where(
        BoardScore.board == board, BoardScore.subject_type == subject_type, BoardScore.subject_id == subject_id)
    return db.session.execute(_with_members(statement, measure)).first()


def rank_of(board: str, subject_type: SubjectType, subject_id: int, scope: Scope = CITY,
            measure: Measure = Measure.OWN) -> tuple[int, int] | None:
    """``(rank, value)`` of a subject on a board within a scope; None when absent from the board or the scope.

    The function the annual settlement, stars and red flags should use for a single rank."""
    if subject_type == SubjectType.MEMBER and measure is Measure.OWN:
        found = own_rank(board, subject_id, scope.kind)
        value = None if found is None else found.score
    else:
        found = subject_row(board, subject_type, subject_id, measure)
        value = None if found is None else found.value
    if found is None or scope not in placement_of_row(found).scopes():
        return None
    rank = found.rank if subject_type == SubjectType.MEMBER and measure is Measure.OWN \
        else rank_at(board, subject_type, scope, value, measure)
    return rank, value


def scope_total_sql(board, subject_type: SubjectType, kind: ScopeKind, scope_id=None, histogram_key=None):
    """How many subjects a scope's board holds (histogram sum for large member scopes), as a scalar subquery;
    arguments may be values or bind parameters."""
    if subject_type == SubjectType.MEMBER and kind in HISTOGRAM_KINDS:
        return sa.select(sa.func.coalesce(sa.func.sum(BoardBucket.n), sql_constant(0))).where(
            BoardBucket.board == board, BoardBucket.scope_key == histogram_key).scalar_subquery()
    return sa.select(sa.func.count()).where(*board_rows(board, subject_type, kind, scope_id)).scalar_subquery()


def scope_total(board: str, subject_type: SubjectType, scope: Scope) -> int:
    return db.session.scalar(sa.select(scope_total_sql(board, subject_type, scope.kind, scope.id,
                                                       scope.histogram_key)))


def member_ranks(member_id: int, boards: list[str]) -> dict[str, dict]:
    """The member's rank in every scope he sits in, on each board: one statement however many scopes.

    ``{board: {"points": cents, "reached_at": ..., "ranks": [(Scope, rank), ...]}}``; boards he is not on are
    left out."""
    return member_ranks_of_rows(core_execute(own_ranks_statement(len(boards)),
                                             {"member_id": member_id, **board_params(boards)}))


def member_ranks_of_rows(rows) -> dict[str, dict]:
    """``member_ranks`` of the rows of ``own_ranks_statement``."""
    result = {}
    for row in rows:
        scopes = {scope.kind: scope for scope in placement_of_row(row).scopes()}
        result[row.board] = {"points": row.score, "reached_at": row.reached_at,
                             "ranks": [(scopes[kind], getattr(row, f"rank_{kind}"))
                                       for kind in MEMBER_SCOPE_ORDER if kind in scopes]}
    return result


__all__ = ["Measure", "ScopeKind", "board_params", "member_ranks", "member_ranks_of_rows", "own_rank",
           "own_ranks_statement", "rank_at", "rank_of", "scope_total"]
