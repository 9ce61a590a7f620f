"""Keeping boards equal to the totals on the write path: called from ``bump_totals`` (same transaction).

For one ledger entry: add the score delta to the subject's board rows in SQL (``score = score + n``, one upsert that
locks them and returns them as written; a row it creates is placed right after), then move the member's count
from the old to the new bucket and exact score in each large scope, and add the member's delta to his branch's
and department's rollups (``member_points``, ``participants``). Histogram rows are written in sorted key order,
so two concurrent awards never wait on each other's rows in opposite orders. Transfers (``move_member``)
re-scope the boards of periods ending after the transfer (the open ones for a transfer now); earlier boards keep
the scopes of their period's end. A deactivated member (``Member.inactive_since``) has no row on the standing
board nor on any board of a period ending after his deactivation (``departed_boards``): entries that still reach
him (a reversal, a withdrawal) move his totals but create no such row.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from points_service.db import core_execute, db, upsert, utcnow
from points_service.domain.boards.keys import (
    BOARD_PERIOD_KINDS,
    STANDING_BOARD,
    Placement,
    board_deltas,
    board_key,
    bucket_of,
    period_of_board,
    placement_of_row,
)
from points_service.domain.boards.placement import (
    department_of,
    organization_placements,
    placement,
    subject_placement,
)
from points_service.domain.periods import parse_period, period_containing
from points_service.models import (
    BoardBucket,
    BoardFine,
    BoardOrgMembers,
    BoardScore,
    Member,
    Organization,
    OrgKind,
    SubjectType,
)
from points_service.models.boards import SCOPE_COLUMNS

ROW_COLUMNS = (BoardScore.board, BoardScore.score, *(getattr(BoardScore, c) for c in SCOPE_COLUMNS))
Change = tuple[str, int | None, int, Placement]  # board, old score (None: new row), new score, placement


# The scope columns of a board row an upsert has just created (no organization has department -1), placed by
# the same transaction right after. Upserting first spares a credit the read of the subject's rows (and of his
# organizations' places) before it writes: almost always the rows exist, and their placement is kept.
UNPLACED = Placement(department_id=-1)
WRITTEN_COLUMNS = tuple(column.key for column in ROW_COLUMNS)


def bump_boards(entry, contributions: Iterable) -> None:
    """Add one entry's contributions to the subject's boards, histograms and rollups (flushes only)."""
    deltas = board_deltas(contributions)
    if not deltas:
        return
    subject_type = SubjectType(entry.subject_type)
    written = {row.board: row for row in _upsert_scores(subject_type, entry.subject_id, deltas, entry.credited_at)}
    created = sorted(board for board, row in written.items() if placement_of_row(row) == UNPLACED)
    if created and subject_type == SubjectType.MEMBER:
        departed = departed_boards(entry.subject_id, created)
        _delete_rows(entry.subject_id, departed)
        created = [board for board in created if board not in departed]
        written = {board: row for board, row in written.items() if board not in departed}
    placed = _place_new_rows(subject_type, entry.subject_id, created)
    changes: list[Change] = [
        (board, None, row.score, placed[board]) if board in placed else
        (board, row.score - deltas[board], row.score, placement_of_row(row)) for board, row in sorted(written.items())]
    if subject_type == SubjectType.MEMBER:
        bump_histograms(_histogram_moves(changes))
        _bump_rollups(changes)


def _locked_rows(subject_type: SubjectType, subject_id: int, boards: list[str]) -> dict:
    rows = core_execute(_locked_rows_statement(), {"boards": boards, "subject_type": subject_type,
                                                   "subject_id": subject_id})
    return {row.board: row for row in rows}


@functools.cache
def _locked_rows_statement() -> sa.Select:
    return (sa.select(*ROW_COLUMNS)
            .where(BoardScore.board.in_(sa.bindparam("boards", expanding=True)),
                   BoardScore.subject_type == sa.bindparam("subject_type", type_=BoardScore.subject_type.type),
                   BoardScore.subject_id == sa.bindparam("subject_id"))
            .order_by(BoardScore.board).with_for_update())


def _place_new_rows(subject_type: SubjectType, subject_id: int, boards: list[str]) -> dict[str, Placement]:
    """Give rows just created their scopes: open boards the subject's now, a closed period's board those of the
    period's end (one read and one UPDATE per distinct placement)."""
    placed: dict[str, Placement] = {}
    known: dict[datetime | None, Placement] = {}  # a first credit opens several boards with one placement
    for board in boards:
        end = None if board == STANDING_BOARD else parse_period(period_of_board(board)).end
        at = end if end is not None and end <= utcnow() else None
        if at not in known:
            known[at] = subject_placement(subject_type, subject_id, at)
        placed[board] = known[at]
    for where in dict.fromkeys(placed.values()):
        _set_placement(subject_type, subject_id, sorted(b for b, p in placed.items() if p == where), where)
    return placed


def _set_placement(subject_type: SubjectType, subject_id: int, boards: list[str], where: Placement) -> None:
    core_execute(_set_placement_statement(), {"boards": boards, "s_type": subject_type, "s_id": subject_id,
                                              **{f"p_{name}": value for name, value in where.as_row().items()}})


@functools.cache
def _set_placement_statement() -> sa.Update:
    return (sa.update(BoardScore)
            .where(BoardScore.board.in_(sa.bindparam("boards", expanding=True)),
                   BoardScore.subject_type == sa.bindparam("s_type", type_=BoardScore.subject_type.type),
                   BoardScore.subject_id == sa.bindparam("s_id"))
            .values({column: sa.bindparam(f"p_{column}", type_=BoardScore.__table__.c[column].type)
                     for column in SCOPE_COLUMNS}))


def _delete_rows(member_id: int, boards: set[str]) -> None:
    if boards:
        db.session.execute(sa.delete(BoardScore).where(
            BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member_id,
            BoardScore.board.in_(sorted(boards))))


def _upsert_scores(subject_type, subject_id: int, deltas: dict[str, int], credited_at: datetime) -> list:
    """The subject's rows on the boards of ``deltas``, as written: existing rows keep their scopes, new ones are
    ``UNPLACED``."""
    rows = [{"board": board, "subject_type": subject_type, "subject_id": subject_id, "score": deltas[board],
             "reached_at": credited_at if deltas[board] else None, "member_points": 0, "participants": 0,
             **UNPLACED.as_row()} for board in sorted(deltas)]
    return upsert(BoardScore, rows, ("board", "subject_type", "subject_id"), _score_updates, WRITTEN_COLUMNS)


def _score_updates(excluded) -> dict:
    changed = sa.and_(excluded.score != 0, sa.or_(BoardScore.reached_at.is_(None),
                                                  BoardScore.reached_at < excluded.reached_at))
    return {"score": BoardScore.score + excluded.score,
            "reached_at": sa.case((changed, excluded.reached_at), else_=BoardScore.reached_at)}


def _histogram_moves(changes: list[Change]) -> Counter:
    """(model, board, scope key, value) → count change, for every score that moved."""
    moves: Counter = Counter()
    for board, old, new, where in changes:
        if old == new:
            continue
        for key in where.histogram_keys():
            if old is not None:
                moves[(BoardBucket, board, key, bucket_of(old))] -= 1
                moves[(BoardFine, board, key, old)] -= 1
            moves[(BoardBucket, board, key, bucket_of(new))] += 1
            moves[(BoardFine, board, key, new)] += 1
    return moves


@contextlib.contextmanager
def bumps_deferred():
    """Inside, the histogram, rollup and head-count changes of every roster change add up in the session and are
    written once, when the block ends (a roster import). Thousands of transfers between a few branches would
    otherwise update the same organization rows thousands of times in one transaction, and PostgreSQL walks
    every earlier version of a row it updates again: the import would grow with the square of its rows."""
    pending = db.session.info[_DEFERRED] = {"histograms": Counter(), "rollups": Counter(), "members": Counter()}
    try:
        yield
    finally:
        db.session.info.pop(_DEFERRED, None)
    bump_histograms(pending["histograms"])
    bump_rollups(pending["rollups"])
    _count_organizations(pending["members"])


_DEFERRED = "points_board_bumps_deferred"


@contextlib.contextmanager
def savepoint_with_bumps():
    """A SAVEPOINT inside ``bumps_deferred`` whose pending changes are dropped with its rows when the block raises
    (the scheduled-change job's change that can no longer apply), and kept when it does not."""
    pending = db.session.info.get(_DEFERRED)
    kept = {kind: counter.copy() for kind, counter in pending.items()} if pending is not None else None
    try:
        with db.session.begin_nested():
            yield
    except BaseException:
        if kept is not None:
            pending.update(kept)
        raise


def _deferred(kind: str, moves: Counter) -> bool:
    """Add ``moves`` to the pending ones of ``bumps_deferred``, if a block of it is running."""
    pending = db.session.info.get(_DEFERRED)
    if pending is not None:
        pending[kind].update(moves)
    return pending is not None


def bump_histograms(moves: Counter) -> None:
    """Apply count changes to the bucket and fine rows, one upsert per table, rows in key order."""
    if _deferred("histograms", moves):
        return
    for model, value_column in ((BoardBucket, "bucket"), (BoardFine, "score")):
        rows = [{"board": board, "scope_key": key, value_column: value, "n": n}
                for (m, board, key, value), n in sorted(moves.items(), key=lambda kv: kv[0][1:])
                if m is model and n]
        if not rows:
            continue
        upsert(model, rows, ("board", "scope_key", value_column), lambda excluded, m=model: {"n": m.n + excluded.n})


def _bump_rollups(changes: list[Change]) -> None:
    """Add a member's score change to his branch's and department's ``member_points``/``participants``."""
    moves: Counter = Counter()
    for board, old, new, where in changes:
        joined = (new > 0) - (old is not None and old > 0)
        for org_id in {where.branch_id, where.department_id} - {None}:
            moves[(board, org_id, "member_points")] += new - (old or 0)
            moves[(board, org_id, "participants")] += joined
    bump_rollups(moves)


def bump_rollups(moves: Counter) -> None:
    """(board, organization id, column) → change; creates the organization's board row when missing."""
    if _deferred("rollups", moves):
        return
    keys = sorted({(board, org_id) for board, org_id, _ in moves})
    if not keys:
        return
    rows = [{"board": board, "subject_type": SubjectType.ORGANIZATION, "subject_id": org_id, "score": 0,
             "reached_at": None, "member_points": moves[(board, org_id, "member_points")],
             "participants": moves[(board, org_id, "participants")], **UNPLACED.as_row()} for board, org_id in keys]
    written = upsert(BoardScore, rows, ("board", "subject_type", "subject_id"), lambda excluded: {
        "member_points": BoardScore.member_points + excluded.member_points,
        "participants": BoardScore.participants + excluded.participants}, ("board", "subject_id", "department_id"))
    created: dict[int, list[str]] = {}
    for row in written:
        if row.department_id == UNPLACED.department_id:
            created.setdefault(row.subject_id, []).append(row.board)
    placements = organization_placements(set(created)) if created else {}
    for org_id in sorted(created):
        _set_placement(SubjectType.ORGANIZATION, org_id, sorted(created[org_id]), placements[org_id])


def board_ends_after(board: str, at: datetime) -> bool:
    """Whether the board's period ends after ``at`` (the standing board never ends)."""
    return board == STANDING_BOARD or parse_period(period_of_board(board)).end > at


def departed_boards(member_id: int, boards: Iterable[str]) -> set[str]:
    """Of ``boards``, those a deactivated member is kept off (none while he is active)."""
    since = db.session.get(Member, member_id).inactive_since  # the credit path locked and loaded the member
    return set() if since is None else {board for board in boards if board_ends_after(board, since)}


def member_boards_ending_after(member_id: int, at: datetime) -> list[str]:
    """The member's board rows whose period ends after ``at``: those a change dated ``at`` re-scopes."""
    boards = db.session.scalars(sa.select(BoardScore.board).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member_id))
    return sorted(board for board in boards if board_ends_after(board, at))


def open_boards(at: datetime) -> list[str]:
    return sorted([board_key(period_containing(at, kind).key) for kind in BOARD_PERIOD_KINDS] + [STANDING_BOARD])


def move_member(member_id: int, branch_id: int, community_id: int, grid_id: int | None,
                when: datetime | None = None) -> None:
    """A transfer dated ``when``: re-scope the member's rows on the boards of periods ending after it (the open
    boards for a transfer now), their histogram counts and rollups. Closed boards of periods ending after a
    backdated transfer take the new scopes too: a rebuild places them by the affiliation at the period's end."""
    new = placement(branch_id, community_id, grid_id)
    rows = _locked_rows(SubjectType.MEMBER, member_id, member_boards_ending_after(member_id, when or utcnow()))
    moved = [(row.board, row.score, placement_of_row(row)) for row in rows.values() if placement_of_row(row) != new]
    if not moved:
        return
    histograms: Counter = Counter()
    rollups: Counter = Counter()
    for board, score, old in moved:
        for model, value in ((BoardBucket, bucket_of(score)), (BoardFine, score)):
            for key in old.histogram_keys():
                histograms[(model, board, key, value)] -= 1
            for key in new.histogram_keys():
                histograms[(model, board, key, value)] += 1
        for where, sign in ((old, -1), (new, 1)):
            for org_id in {where.branch_id, where.department_id} - {None}:
                rollups[(board, org_id, "member_points")] += sign * score
                rollups[(board, org_id, "participants")] += sign * (score > 0)
    db.session.execute(sa.update(BoardScore).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member_id,
        BoardScore.board.in_([board for board, _, _ in moved])).values(**new.as_row()))
    bump_histograms(histograms)
    bump_rollups(rollups)


def transfer_on_boards(member_id: int, old_branch_id: int, branch_id: int, community_id: int,
                       grid_id: int | None, when: datetime | None = None) -> None:
    """Everything a transfer changes on the boards (called by ``structure.transfer_member``, same transaction)."""
    move_member(member_id, branch_id, community_id, grid_id, when)
    if old_branch_id != branch_id:
        count_members({old_branch_id: -1, branch_id: 1})


def count_member(branch_id: int, sign: int) -> None:
    """An active member joins (+1) or leaves (-1) a branch and its department: the per-capita denominator."""
    count_members({branch_id: sign})


def count_members(signs: dict[int, int]) -> None:
    """``count_member`` for several branches in one statement, by organization id; a transfer's -1 and +1 in
    one department cancel out (a count of zero is the same as no change)."""
    deltas: Counter = Counter()
    for branch_id, sign in signs.items():
        for org_id in {branch_id, department_of(branch_id)} - {None}:
            deltas[org_id] += sign
    if not _deferred("members", deltas):
        _count_organizations(deltas)


def _count_organizations(deltas: Counter) -> None:
    rows = [{"organization_id": org_id, "members": delta} for org_id, delta in sorted(deltas.items()) if delta]
    if rows:
        upsert(BoardOrgMembers, rows, ("organization_id",), lambda excluded: {
            "members": BoardOrgMembers.members + excluded.members})


def pairing_changed(org_id: int) -> None:
    """An organization's paired community changed (its 报到 confirmed elsewhere, a roster file): its board rows,
    and those of the branches that take its pairing, move to the new community's scopes on every board, closed
    ones too (boards follow today's pairing, and a rebuild places every board by it; only the 流动红旗 reads the
    dated pairings). The
    rows are locked in (board, organization) order first, the order credits write rollups in. Flushes only."""
    db.session.flush()  # the new pairing, which the placements read
    ids = _taking_pairing_of(db.session.get(Organization, org_id))
    db.session.execute(sa.select(BoardScore.board).where(
        BoardScore.subject_type == SubjectType.ORGANIZATION, BoardScore.subject_id.in_(ids))
        .order_by(BoardScore.board, BoardScore.subject_id).with_for_update()).all()
    for subject_id, where in sorted(organization_placements(ids).items()):
        db.session.execute(sa.update(BoardScore).where(
            BoardScore.subject_type == SubjectType.ORGANIZATION, BoardScore.subject_id == subject_id)
            .values(**where.as_row()))


def _taking_pairing_of(org: Organization) -> list[int]:
    """The organization, and for a department its branches without a pairing of their own."""
    if org.kind != OrgKind.DEPARTMENT:
        return [org.id]
    return [org.id, *db.session.scalars(sa.select(Organization.id).where(
        Organization.path.startswith(org.path), Organization.kind == OrgKind.BRANCH,
        Organization.paired_community_id.is_(None)).order_by(Organization.id))]
