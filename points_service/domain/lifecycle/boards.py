"""A member leaving and returning to the boards, in the transaction of his status change.

Leaving (a deactivation effective at ``since``): his rows on the standing board and on every board of a period
ending after ``since`` are deleted, with their histogram counts and his branch's and department's rollups.
Returning (a reactivation): those rows come back from his ``point_totals``, placed and dated as a rebuild
(``domain/boards/staging.py``) would place and date them, so the boards keep equal to a rebuild either way.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa

from points_service.db import cents, db, utcnow
from points_service.domain.boards.keys import (
    BOARD_PERIOD_KINDS,
    STANDING_BOARD,
    Placement,
    board_key,
    bucket_of,
    placement_of_row,
)
from points_service.domain.boards.maintain import (
    ROW_COLUMNS,
    board_ends_after,
    bump_histograms,
    bump_rollups,
)
from points_service.domain.boards.placement import member_placement
from points_service.domain.periods import BadPeriod, parse_period
from points_service.models import (
    ALL_TIME,
    SCORING_KINDS,
    BoardBucket,
    BoardFine,
    BoardScore,
    LedgerEntry,
    LedgerName,
    PointTotal,
    SubjectType,
)


def _counts(rows: list[tuple[str, int, Placement]], sign: int) -> tuple[Counter, Counter]:
    """Histogram and rollup changes for adding (+1) or removing (-1) these member rows."""
    histograms: Counter = Counter()
    rollups: Counter = Counter()
    for board, score, where in rows:
        for key in where.histogram_keys():
            histograms[(BoardBucket, board, key, bucket_of(score))] += sign
            histograms[(BoardFine, board, key, score)] += sign
        for org_id in {where.branch_id, where.department_id} - {None}:
            rollups[(board, org_id, "member_points")] += sign * score
            rollups[(board, org_id, "participants")] += sign * (score > 0)
    return histograms, rollups


def leave_boards(member_id: int, since: datetime) -> int:
    """Delete the member's rows on boards ending after ``since`` (and the standing board). Flushes only."""
    found = db.session.execute(sa.select(*ROW_COLUMNS).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member_id)
        .order_by(BoardScore.board).with_for_update()).all()
    rows = [(row.board, row.score, placement_of_row(row)) for row in found if board_ends_after(row.board, since)]
    if not rows:
        return 0
    histograms, rollups = _counts(rows, -1)
    db.session.execute(sa.delete(BoardScore).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member_id,
        BoardScore.board.in_([board for board, _, _ in rows])))
    bump_histograms(histograms)
    bump_rollups(rollups)
    return len(rows)


def return_to_boards(member_id: int, since: datetime, now: datetime | None = None) -> int:
    """Re-create the rows ``leave_boards(member_id, since)`` removed, from his totals. Flushes only."""
    now = now or utcnow()
    wanted = [(board, score) for board, score in _scores_from_totals(member_id) if board_ends_after(board, since)]
    if not wanted:
        return 0
    reached = _reached_at(member_id, [board for board, _ in wanted])
    rows, values = [], []
    for board, score in wanted:
        end = None if board == STANDING_BOARD else parse_period(board.partition(":")[2]).end
        where = member_placement(member_id, end if end is not None and end <= now else None)
        rows.append((board, score, where))
        values.append({"board": board, "subject_type": SubjectType.MEMBER, "subject_id": member_id, "score": score,
                       "reached_at": reached.get(board), "member_points": 0, "participants": 0, **where.as_row()})
    db.session.execute(sa.insert(BoardScore).values(values))
    histograms, rollups = _counts(rows, 1)
    bump_histograms(histograms)
    bump_rollups(rollups)
    return len(rows)


def _scores_from_totals(member_id: int) -> list[tuple[str, int]]:
    """(board, score in hundredths) for each of the member's totals that has a board, as a rebuild reads them."""
    found = db.session.execute(sa.select(PointTotal.ledger, PointTotal.period, cents(PointTotal.earned),
                                         cents(PointTotal.deducted), cents(PointTotal.settled)).where(
        PointTotal.subject_type == SubjectType.MEMBER, PointTotal.subject_id == member_id)).all()
    scores = []
    for ledger, period, earned, deducted, settled in found:  # a total no entry of non-zero points moved: no row
        if ledger == LedgerName.STANDING and period == ALL_TIME and (earned or deducted or settled):
            scores.append((STANDING_BOARD, int(earned) + int(deducted) + int(settled)))
        elif ledger == LedgerName.ASSESSMENT and period != ALL_TIME and (earned or deducted) \
                and _is_board_period(period):
            scores.append((board_key(period), int(earned) + int(deducted)))
    return sorted(scores)


def _is_board_period(key: str) -> bool:
    try:
        return parse_period(key).kind in BOARD_PERIOD_KINDS
    except BadPeriod:
        return False


def _reached_at(member_id: int, boards: list[str]) -> dict[str, datetime]:
    """When each board's score last moved: the latest non-zero entry in the period that moves that board."""
    mine = sa.and_(LedgerEntry.subject_type == SubjectType.MEMBER, LedgerEntry.subject_id == member_id,
                   LedgerEntry.points != 0)
    moved = sa.and_(LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.kind.in_(SCORING_KINDS))
    reached = {}
    for board in boards:
        if board == STANDING_BOARD:
            condition = sa.or_(moved, LedgerEntry.ledger == LedgerName.STANDING)
        else:
            period = parse_period(board.partition(":")[2])
            condition = sa.and_(moved, LedgerEntry.credited_at >= period.start, LedgerEntry.credited_at < period.end)
        at = db.session.scalar(sa.select(sa.func.max(LedgerEntry.credited_at)).where(mine, condition))
        if at is not None:
            reached[board] = at
    return reached
