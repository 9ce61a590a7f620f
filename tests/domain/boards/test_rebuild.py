"""The set-wise boards rebuild: staged in temporary tables, compared in SQL, and (on PostgreSQL, when large)
loaded by truncating and re-indexing — which must leave the same rows and the same indexes behind."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.boards import audit
from points_service.domain.boards.audit import compare_boards, rebuild_boards_from_totals
from points_service.domain.boards.rank import rank_of
from points_service.domain.periods import LOCAL_TZ, parse_period
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import BoardBucket, BoardFine, BoardScore, EntryKind, LedgerName, SubjectType
from tests.factories import make_world
from tests.factories.boards import entry, reverse

AFTER_2026 = datetime(2027, 2, 1, tzinfo=LOCAL_TZ)
Q3_BOARD = "assessment:2026-Q3"


@pytest.fixture
def world(app):
    world = make_world()
    award = entry(world["alice"], 5, datetime(2026, 3, 31, 23, 59, tzinfo=LOCAL_TZ))
    entry(world["alice"], 4)
    entry(world["bob"], 2)
    entry(world["carol"], "0.75", datetime(2025, 12, 31, 23, 59, tzinfo=LOCAL_TZ))
    reverse(award, datetime(2026, 8, 11, 9, tzinfo=LOCAL_TZ))
    entry(world["bob"], "-0.5", ledger=LedgerName.STANDING, kind=EntryKind.DECAY)
    entry(world["finance"], 3, subject_type=SubjectType.ORGANIZATION)
    db.session.commit()
    return world


def board_rows() -> set[tuple]:
    return {tuple(row) for row in db.session.execute(sa.select(BoardScore.__table__))}


def index_definitions() -> list[tuple]:
    return db.session.execute(sa.text(
        "SELECT indexname, regexp_replace(indexdef, ' ON [^ ]+ ', ' ON ') FROM pg_indexes "
        "WHERE tablename = 'board_scores' AND schemaname = current_schema() ORDER BY 1")).all()


def test_compare_boards_reports_a_tampered_row_without_touching_the_live_rows(world):
    db.session.execute(sa.update(BoardScore).where(BoardScore.board == Q3_BOARD, BoardScore.subject_id ==
                                                   world["bob"].id).values(score=777))
    db.session.commit()
    before = board_rows()
    differences = compare_boards(now=AFTER_2026)
    assert [d["stored"][0] for d in differences if d["key"][:2] == ("board_scores", Q3_BOARD)] == [777]
    assert board_rows() == before


def test_a_rebuild_in_place_gives_the_rows_the_write_path_made(world):
    before = board_rows()
    rebuild_boards_from_totals(now=AFTER_2026)
    db.session.commit()
    assert board_rows() == before
    assert compare_boards(now=AFTER_2026) == []


@pytest.mark.postgres
def test_a_bulk_rebuild_on_postgresql_truncates_re_indexes_and_gives_the_same_rows(world, monkeypatch):
    before, indexes = board_rows(), index_definitions()
    monkeypatch.setattr(audit, "BULK_ROWS", 1)  # take the truncate-and-re-index path on a small city
    rebuild_boards_from_totals(now=AFTER_2026)
    db.session.commit()
    assert len(indexes) == 9 and index_definitions() == indexes
    assert board_rows() == before
    assert compare_boards(now=AFTER_2026) == []
    assert rank_of(Q3_BOARD, SubjectType.MEMBER, world["bob"].id) == (1, 200)  # alice: 4 - 5 reversed = -1


def zero_count_rows() -> int:
    return sum(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(column == 0))
               for model, column in ((BoardBucket, BoardBucket.n), (BoardFine, BoardFine.n)))


def test_the_weekly_audit_prunes_emptied_histogram_rows_and_finds_nothing_on_untouched_boards(world):
    db.session.add_all([BoardBucket(board=Q3_BOARD, scope_key="city", bucket=999, n=0),
                        BoardFine(board=Q3_BOARD, scope_key="city", score=99_900, n=0)])
    db.session.commit()
    run = run_job(JOBS_BY_ID["boards_audit"], parse_period("2026-11-21"))
    assert run.result["pruned"] >= 2 and zero_count_rows() == 0
    assert (run.result["differences"], run.result["first"]) == (0, [])
    assert rank_of(Q3_BOARD, SubjectType.MEMBER, world["bob"].id) == (1, 200)  # ranks unchanged by the pruning


def test_the_weekly_audit_reports_a_tampered_board_row_and_leaves_it_for_an_operator(world, caplog):
    bob = world["bob"]
    db.session.execute(sa.update(BoardScore).where(BoardScore.board == Q3_BOARD, BoardScore.subject_id == bob.id)
                       .values(score=777))
    db.session.commit()
    run = run_job(JOBS_BY_ID["boards_audit"], parse_period("2026-11-21"))
    assert run.result["differences"] >= 1 and f"board_scores {Q3_BOARD} member {bob.id}" in run.result["first"]
    assert "boards_audit 2026-11-21" in caplog.text
    assert db.session.scalar(sa.select(BoardScore.score).where(BoardScore.board == Q3_BOARD,
                                                               BoardScore.subject_id == bob.id)) == 777


def test_an_audit_of_a_city_without_points_or_pairings_finds_nothing(app):
    """Regression: PostgreSQL typed an all-NULL staging column as text and the weekly audit failed."""
    assert compare_boards() == []
    make_world()  # regions and organizations, but no points and no organization paired with a community
    db.session.commit()
    assert compare_boards() == []
