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

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.boards.keys import (
    CITY,
    MEMBER_SCOPE_ORDER,
    Placement,
    Scope,
    ScopeKind,
    bucket_of,
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
    members = sa.func.coalesce(BoardOrgMembers.members, 0)
    if measure is Measure.PER_CAPITA:
        return sa.case((members > 0, BoardScore.member_points // members), else_=0)
    if measure is Measure.PARTICIPATION:
        return sa.case((members > 0, BoardScore.participants * 10000 // members), else_=0)
    return BoardScore.score


def scope_filter(scope: Scope) -> list:
    return [] if scope.column is None else [getattr(BoardScore, scope.column) == scope.id]


def board_rows(board: str, subject_type: SubjectType, scope: Scope) -> list:
    """The rows of one board in one scope. Organization boards rank departments against each other, except
    inside a department (``organization:{id}``), where its branches are ranked."""
    clauses = [BoardScore.board == board, BoardScore.subject_type == subject_type, *scope_filter(scope)]
    if subject_type == SubjectType.ORGANIZATION and scope.kind is ScopeKind.DEPARTMENT:
        clauses.append(BoardScore.branch_id.is_not(None))
    elif subject_type == SubjectType.ORGANIZATION and scope.kind is not ScopeKind.BRANCH:
        clauses.append(BoardScore.branch_id.is_(None))
    return clauses


def _with_members(statement: sa.Select, measure: Measure) -> sa.Select:
    if measure is Measure.OWN:
        return statement
    return statement.outerjoin(BoardOrgMembers, BoardOrgMembers.organization_id == BoardScore.subject_id)


def member_rank_sql(board: str, scope: Scope, score: int) -> sa.ColumnElement:
    """1 + members of ``scope`` scoring above ``score`` on ``board``, as one SQL expression."""
    key = scope.histogram_key
    if key is None:
        higher = sa.select(sa.func.count()).where(
            *board_rows(board, SubjectType.MEMBER, scope), BoardScore.score > score)
        return 1 + higher.scalar_subquery()
    bucket = bucket_of(score)
    buckets_above = sa.select(sa.func.coalesce(sa.func.sum(BoardBucket.n), 0)).where(
        BoardBucket.board == board, BoardBucket.scope_key == key, BoardBucket.bucket > bucket)
    higher_in_bucket = sa.select(sa.func.coalesce(sa.func.sum(BoardFine.n), 0)).where(
        BoardFine.board == board, BoardFine.scope_key == key, BoardFine.score > score,
        BoardFine.score < (bucket + 1) * 100)
    return 1 + buckets_above.scalar_subquery() + higher_in_bucket.scalar_subquery()


def organization_rank_sql(board: str, scope: Scope, measure: Measure, value: int) -> sa.ColumnElement:
    higher = _with_members(sa.select(sa.func.count()).select_from(BoardScore), measure).where(
        *board_rows(board, SubjectType.ORGANIZATION, scope), measure_expression(measure) > value)
    return 1 + higher.scalar_subquery()


def rank_at(board: str, subject_type: SubjectType, scope: Scope, value: int,
            measure: Measure = Measure.OWN) -> int:
    """The competition rank a score (or measure value) has in a scope: one statement."""
    if subject_type == SubjectType.MEMBER:
        return db.session.scalar(sa.select(member_rank_sql(board, scope, value)))
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
    found = subject_row(board, subject_type, subject_id, measure)
    if found is None or scope not in placement_of_row(found).scopes():
        return None
    return rank_at(board, subject_type, scope, found.value, measure), found.value


def scope_total(board: str, subject_type: SubjectType, scope: Scope) -> int:
    """How many subjects the scope's board holds (histogram sum for large member scopes)."""
    if subject_type == SubjectType.MEMBER and scope.histogram_key is not None:
        return db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(BoardBucket.n), 0)).where(
            BoardBucket.board == board, BoardBucket.scope_key == scope.histogram_key))
    return db.session.scalar(sa.select(sa.func.count()).where(*board_rows(board, subject_type, scope)))


def member_ranks(member_id: int, boards: list[str]) -> dict[str, dict]:
    """The member's rank in every scope he sits in, on each board: two statements however many scopes.

    ``{board: {"points": cents, "reached_at": ..., "ranks": [(Scope, rank), ...]}}``; boards he is not on are
    left out."""
    rows = db.session.execute(sa.select(BoardScore.board, BoardScore.score, BoardScore.reached_at,
                                        *(getattr(BoardScore, c) for c in SCOPE_COLUMNS))
                              .where(BoardScore.board.in_(boards), BoardScore.subject_type == SubjectType.MEMBER,
                                     BoardScore.subject_id == member_id)).all()
    if not rows:
        return {}
    wanted = [(row, scope) for row in rows for scope in _ordered_scopes(placement_of_row(row))]
    ranks = db.session.execute(sa.select(*(
        member_rank_sql(row.board, scope, row.score).label(f"r{index}") for index, (row, scope) in enumerate(wanted)
    ))).one()
    result = {row.board: {"points": row.score, "reached_at": row.reached_at, "ranks": []} for row in rows}
    for (row, scope), rank in zip(wanted, ranks, strict=True):
        result[row.board]["ranks"].append((scope, rank))
    return result


def _ordered_scopes(where: Placement) -> list[Scope]:
    by_kind = {scope.kind: scope for scope in where.scopes()}
    return [by_kind[kind] for kind in MEMBER_SCOPE_ORDER if kind in by_kind]


__all__ = ["Measure", "ScopeKind", "member_ranks", "rank_at", "rank_of", "scope_total"]
