"""Leaderboards on the write path: board rows, histograms, ranks, ties, hidden members, transfers, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.boards.audit import compare_boards, rebuild_boards, rebuild_boards_from_totals
from points_service.domain.boards.keys import CITY, HIDDEN_NAME, Scope, ScopeKind
from points_service.domain.boards.pages import leaderboard, my_rank, my_ranks, rank_summary
from points_service.domain.boards.rank import Measure, rank_of
from points_service.domain.ledger.settlement import reset_assessment
from points_service.domain.lifecycle.status import deactivate_member, reactivate_member
from points_service.domain.periods import LOCAL_TZ, PeriodKind, parse_period, period_containing
from points_service.domain.policy import policy_in_force
from points_service.domain.structure import transfer_member
from points_service.models import (
    Affiliation,
    BoardBucket,
    BoardFine,
    BoardOrgMembers,
    BoardScore,
    DeactivationReason,
    EntryKind,
    LedgerName,
    SubjectType,
)
from tests.factories import make_member, make_world
from tests.factories.boards import Q3, entry, naive_rank, reverse

Q3_BOARD = "assessment:2026-Q3"
MEMBER = SubjectType.MEMBER
AFTER_2026 = datetime(2027, 2, 1, tzinfo=LOCAL_TZ)


@pytest.fixture
def world(app):
    return make_world()


def histograms() -> dict:
    rows = {}
    for model, value in ((BoardBucket, BoardBucket.bucket), (BoardFine, BoardFine.score)):
        for board, key, v, n in db.session.execute(sa.select(model.board, model.scope_key, value, model.n)):
            if n:
                rows[(model.__tablename__, board, key, v)] = n
    return rows


def scopes_of(world, name: str) -> list[Scope]:
    member = world[name]
    return [CITY, Scope(ScopeKind.DISTRICT, world["district"].id), Scope(ScopeKind.STREET, world["street"].id),
            Scope(ScopeKind.COMMUNITY, member.community_id), Scope(ScopeKind.BRANCH, member.branch_id),
            Scope(ScopeKind.DEPARTMENT, member.branch.parent_id)] + (
        [Scope(ScopeKind.GRID, member.grid_id)] if member.grid_id else [])


def test_an_award_moves_the_members_bucket_and_fine_rows_in_every_large_scope(world):
    entry(world["alice"], "2.50")
    db.session.commit()
    department = world["finance"].id
    keys = {"city", f"district:{world['district'].id}", f"street:{world['street'].id}", f"department:{department}"}
    rows = histograms()
    assert {key for (_, board, key, _) in rows if board == Q3_BOARD} == keys
    assert all(rows[("board_buckets", Q3_BOARD, key, 2)] == 1 for key in keys)
    assert all(rows[("board_fine", Q3_BOARD, key, 250)] == 1 for key in keys)
    entry(world["alice"], 1)
    db.session.commit()
    rows = histograms()
    assert ("board_fine", Q3_BOARD, "city", 250) not in rows and rows[("board_fine", Q3_BOARD, "city", 350)] == 1
    assert rows[("board_buckets", Q3_BOARD, "city", 3)] == 1 and ("board_buckets", Q3_BOARD, "city", 2) not in rows


def test_a_reversal_returns_every_histogram_row_to_its_previous_count(world):
    entry(world["bob"], 4)
    entry(world["alice"], 3)
    db.session.commit()
    before = histograms()
    award = entry(world["alice"], 6)
    db.session.commit()
    assert histograms() != before
    reverse(award, Q3)
    db.session.commit()
    assert histograms() == before


def test_ties_share_a_rank_and_are_ordered_by_reached_at_then_id(world):
    extra = make_member(world["fin1"], world["north"], world["north_grid"], name="赵一")
    entry(world["alice"], 90, datetime(2026, 7, 1, 9, tzinfo=LOCAL_TZ))
    entry(world["bob"], 80, datetime(2026, 7, 3, 9, tzinfo=LOCAL_TZ))
    entry(world["carol"], 80, datetime(2026, 7, 2, 9, tzinfo=LOCAL_TZ))
    entry(extra, 70, datetime(2026, 7, 1, 9, tzinfo=LOCAL_TZ))
    db.session.commit()
    admin = principal_for(world["users"]["admin"])
    page = leaderboard(admin, MEMBER, "all", parse_period("2026-Q3"), Measure.OWN, 1, 20)
    assert [(item["rank"], item["subject"]["id"]) for item in page["items"]] == [
        (1, world["alice"].id), (2, world["carol"].id), (2, world["bob"].id), (4, extra.id)]
    second = leaderboard(admin, MEMBER, "all", parse_period("2026-Q3"), Measure.OWN, 2, 2)
    assert [item["rank"] for item in second["items"]] == [2, 4] and second["total"] == 4
    assert rank_of(Q3_BOARD, MEMBER, world["bob"].id) == (2, 8000)


def test_a_hidden_member_keeps_his_rank_but_others_see_no_name(world):
    world["bob"].show_on_boards = False
    entry(world["alice"], 5)
    entry(world["bob"], 9)
    db.session.commit()
    alice = principal_for(world["users"]["alice"])
    bob = principal_for(world["users"]["bob"])
    seen = leaderboard(alice, MEMBER, "all", parse_period("2026-Q3"), Measure.OWN, 1, 20)["items"]
    assert seen[0]["rank"] == 1 and seen[0]["subject"] == {"id": None, "name": HIDDEN_NAME, "hidden": True,
                                                           "organization": None}
    assert seen[1]["rank"] == 2 and seen[1]["subject"]["name"] == "张晓丽"
    own = leaderboard(bob, MEMBER, "all", parse_period("2026-Q3"), Measure.OWN, 1, 20)
    assert own["items"][0]["subject"]["name"] == "李·建国" and own["me"]["rank"] == 1
    assert rank_of(Q3_BOARD, MEMBER, world["bob"].id) == (1, 900)


@pytest.mark.parametrize("period", ["2026-08", "2026-Q3", "2026-H2", "2026", "standing"])
def test_every_scope_and_period_kind_ranks_like_a_naive_count(world, period):
    extra = [make_member(world["fin2"], world["north"], world["north_grid"]) for _ in range(3)]
    for member, points in zip([world["alice"], world["bob"], world["carol"], *extra], [5, 9, 5, "0.5", 12, 9],
                              strict=True):
        entry(member, points)
    entry(world["alice"], "-1.5", ledger=LedgerName.STANDING, kind=EntryKind.DECAY)
    db.session.commit()
    board = "standing:all" if period == "standing" else f"assessment:{period}"
    for name in ("alice", "bob", "carol"):
        for scope in scopes_of(world, name):
            expected = naive_rank(board, world[name].id, scope.column, scope.id)
            assert rank_of(board, MEMBER, world[name].id, scope) == (expected, mine(board, world[name].id)), scope
    assert rank_of(board, MEMBER, world["alice"].id, Scope(ScopeKind.COMMUNITY, world["south"].id)) is None


def mine(board: str, member_id: int) -> int:
    return db.session.scalar(sa.select(BoardScore.score).where(
        BoardScore.board == board, BoardScore.subject_type == MEMBER, BoardScore.subject_id == member_id))


def test_period_boundaries_are_in_asia_shanghai(world):
    entry(world["alice"], 3, datetime(2026, 9, 30, 23, 30, tzinfo=LOCAL_TZ))  # 15:30 UTC: still Q3 locally
    entry(world["bob"], 4, datetime(2026, 10, 1, 0, 10, tzinfo=LOCAL_TZ))  # 2026-09-30 16:10 UTC: Q4 locally
    db.session.commit()
    boards = {board: {row[0] for row in db.session.execute(sa.select(BoardScore.subject_id).where(
        BoardScore.board == board, BoardScore.subject_type == MEMBER))}
        for board in ("assessment:2026-Q3", "assessment:2026-09", "assessment:2026-Q4", "assessment:2026-10",
                      "assessment:2026-H2")}
    assert boards["assessment:2026-Q3"] == boards["assessment:2026-09"] == {world["alice"].id}
    assert boards["assessment:2026-Q4"] == boards["assessment:2026-10"] == {world["bob"].id}
    assert boards["assessment:2026-H2"] == {world["alice"].id, world["bob"].id}
    assert compare_boards(now=AFTER_2026) == []


def test_a_transfer_moves_open_boards_and_leaves_a_closed_quarter_unchanged(world):
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2020, 1, 1, tzinfo=UTC)))
    now = utcnow()
    closed = period_containing(now, PeriodKind.QUARTER).previous()
    open_board, closed_board = f"assessment:{period_containing(now, PeriodKind.QUARTER)}", f"assessment:{closed}"
    entry(world["alice"], 6, closed.start + timedelta(days=3))
    entry(world["alice"], 6, now - timedelta(minutes=1))
    entry(world["bob"], 2, now - timedelta(minutes=1))
    db.session.commit()
    transfer_member(world["alice"], world["fin2"], world["south"], world["south_grid"])
    db.session.commit()
    south = Scope(ScopeKind.COMMUNITY, world["south"].id)
    north = Scope(ScopeKind.COMMUNITY, world["north"].id)
    assert rank_of(open_board, MEMBER, world["alice"].id, south) == (1, 600)
    assert rank_of(open_board, MEMBER, world["bob"].id, south) == (2, 200)
    assert rank_of(open_board, MEMBER, world["alice"].id, Scope(ScopeKind.BRANCH, world["fin2"].id)) == (1, 600)
    assert rank_of(open_board, MEMBER, world["alice"].id, north) is None
    assert rank_of(closed_board, MEMBER, world["alice"].id, north) == (1, 600)
    assert rank_of(closed_board, MEMBER, world["alice"].id, south) is None
    assert compare_boards() == []


@pytest.mark.parametrize("branch, department", [("fin2", "finance"), ("edu1", "education")],
                         ids=["within-the-department", "to-another-department"])
def test_a_transfer_moves_the_member_counts_of_both_branches_and_departments_in_one_statement(
        world, statements, branch, department):
    def counts() -> dict:
        return dict(db.session.execute(sa.select(BoardOrgMembers.organization_id, BoardOrgMembers.members)).all())

    before = counts()
    statements.clear()
    transfer_member(world["alice"], world[branch], world["south"], None)
    db.session.flush()

    assert len([s for s in statements if "board_org_members" in s]) == 1
    moved = {org_id: sum(sign for name, sign in (("fin1", -1), ("finance", -1), (branch, 1), (department, 1))
                         if world[name].id == org_id) for org_id in set(before) | set(counts())}
    assert {org_id: counts().get(org_id, 0) - before.get(org_id, 0) for org_id in moved} == moved
    assert compare_boards() == []


def test_a_transaction_reads_each_branchs_department_and_each_placement_once_however_many_members_it_moves(
        world, statements):
    """A roster import moves thousands of members into a few branches and communities in one transaction."""
    def reads() -> tuple[int, int]:
        started = [s.lstrip() for s in statements]
        return (len([s for s in started if s.startswith("SELECT organizations.path")]),
                len([s for s in started if s.startswith("SELECT (SELECT organizations.path")]))

    transfer_member(world["alice"], world["fin2"], world["south"], None)  # from fin1
    transfer_member(world["carol"], world["fin2"], world["south"], None)  # from edu1
    assert reads() == (3, 1)  # fin1's, fin2's and edu1's paths; the one place both moved to
    db.session.commit()
    transfer_member(world["bob"], world["fin1"], world["south"], None)  # from fin2
    assert reads() == (3 + 2, 1 + 1)  # a new transaction reads them again
    assert compare_boards() == []


def test_organizations_rank_by_own_points_per_capita_and_participation(world):
    for _ in range(3):
        make_member(world["fin1"], world["north"])  # finance: 5 members, education: 1
    entry(world["finance"], 10, subject_type=SubjectType.ORGANIZATION)
    entry(world["education"], 4, subject_type=SubjectType.ORGANIZATION)
    entry(world["alice"], 6)
    entry(world["bob"], 4)
    entry(world["carol"], 7)
    db.session.commit()
    rebuild_boards_from_totals()  # also rebuilds the member counts (the denominators) the roster made
    db.session.commit()
    admin = principal_for(world["users"]["admin"])

    def board(measure, scope="all"):
        page = leaderboard(admin, SubjectType.ORGANIZATION, scope, parse_period("2026-Q3"), measure, 1, 20)
        return [(item["rank"], item["subject"]["id"], str(item["value"])) for item in page["items"]]

    finance, education = world["finance"].id, world["education"].id
    assert board(Measure.OWN) == [(1, finance, "10"), (2, education, "4")]
    # finance: (6 + 4) / 5 members = 2.00; education: 7 / 1 = 7.00
    assert board(Measure.PER_CAPITA) == [(1, education, "7"), (2, finance, "2")]
    # finance: 2 of 5 members scored = 0.4; education: 1 of 1
    assert board(Measure.PARTICIPATION) == [(1, education, "1.0000"), (2, finance, "0.4000")]
    # inside a department its branches are ranked: fin1 6 / 4 members = 1.50, fin2 4 / 1 = 4.00
    assert board(Measure.PER_CAPITA, f"organization:{finance}") == [
        (1, world["fin2"].id, "4"), (2, world["fin1"].id, "1.5")]
    assert compare_boards(now=AFTER_2026) == []


def test_compare_boards_finds_a_tampered_histogram_row_and_a_tampered_score_and_fix_repairs_them(world):
    entry(world["alice"], 5)
    entry(world["bob"], 3)
    db.session.commit()
    assert compare_boards(now=AFTER_2026) == []
    db.session.execute(sa.update(BoardBucket).where(BoardBucket.scope_key == "city").values(n=BoardBucket.n + 1))
    db.session.execute(sa.update(BoardScore).where(BoardScore.board == Q3_BOARD, BoardScore.subject_type == MEMBER,
                                                   BoardScore.subject_id == world["bob"].id).values(score=9999))
    db.session.commit()
    differences = compare_boards(now=AFTER_2026)
    tables = {difference["key"][0] for difference in differences}
    assert {"board_buckets", "board_scores"} <= tables
    bob_row = [d for d in differences if d["key"] == ("board_scores", Q3_BOARD, MEMBER, world["bob"].id)]
    assert bob_row and bob_row[0]["stored"][0] == 9999 and bob_row[0]["expected"][0] == 300
    assert rebuild_boards(fix=True, now=AFTER_2026)
    assert compare_boards(now=AFTER_2026) == []
    assert rank_of(Q3_BOARD, MEMBER, world["bob"].id) == (2, 300)


def test_a_credit_to_rows_that_exist_writes_the_boards_without_reading_them_first(world, statements):
    entry(world["alice"], 1)  # creates and places his rows and his branch's and department's
    db.session.commit()
    before = len(statements)
    entry(world["alice"], 2)
    db.session.commit()
    board_statements = [" ".join(s.split())[:40] for s in statements[before:] if "board_scores" in s]
    assert board_statements == ["INSERT INTO board_scores (board, subject"] * 2  # his rows, then the rollups
    assert not [s for s in statements[before:] if "FROM organizations" in s or "FROM regions" in s]  # no placing
    assert compare_boards(now=AFTER_2026) == []


def test_rows_a_credit_creates_are_placed_like_a_rebuild_places_them(world):
    entry(world["alice"], 1)
    entry(world["finance"], 3, subject_type=SubjectType.ORGANIZATION)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BoardScore)
                             .where(BoardScore.department_id == -1)) == 0
    assert compare_boards(now=AFTER_2026) == []


def test_the_write_path_equals_the_set_wise_rebuild_after_mixed_entries(world):
    award = entry(world["alice"], 5, datetime(2026, 3, 31, 23, 59, tzinfo=LOCAL_TZ))
    entry(world["bob"], -2)
    entry(world["carol"], "0.75", datetime(2025, 12, 31, 23, 59, tzinfo=LOCAL_TZ))
    reverse(award, Q3)
    entry(world["bob"], "-0.5", ledger=LedgerName.STANDING, kind=EntryKind.DECAY)
    entry(world["finance"], 3, subject_type=SubjectType.ORGANIZATION)
    db.session.commit()
    assert compare_boards(now=AFTER_2026) == []


def test_my_ranks_cover_every_scope_for_the_quarter_and_the_standing_score(world):
    entry(world["alice"], 5)
    entry(world["carol"], 8)
    db.session.commit()
    ranks = my_ranks(world["alice"].id, now=Q3)
    assert ranks["quarter"]["period"] == "2026-Q3" and ranks["standing"]["period"] == "standing"
    by_kind = {rank["kind"]: rank["rank"] for rank in ranks["quarter"]["ranks"]}
    assert by_kind == {"grid": 1, "community": 2, "street": 2, "district": 2, "all": 2, "branch": 1,
                       "department": 1}
    assert rank_summary(world["bob"].id, [parse_period("2026-Q3")])[0] == {
        "period": "2026-Q3", "board": Q3_BOARD, "on_board": False, "points": 0, "reached_at": None, "ranks": []}


def new_year_rows(*subjects) -> list[tuple]:
    """(board, subject type, id) of the rows on 2027's boards, of these (type, id) subjects (any when none)."""
    rows = db.session.execute(sa.select(BoardScore.board, BoardScore.subject_type, BoardScore.subject_id).where(
        BoardScore.board.like("assessment:2027%")).order_by(BoardScore.board)).all()
    return [tuple(row) for row in rows if not subjects or tuple(row[1:]) in subjects]


def test_the_yearly_reset_puts_nobody_on_the_new_years_boards(world):
    entry(world["alice"], 5)
    entry(world["finance"], 4, subject_type=SubjectType.ORGANIZATION)
    award = entry(world["carol"], 2, datetime(2027, 1, 5, 9, tzinfo=LOCAL_TZ))
    reverse(award, datetime(2027, 1, 6, 9, tzinfo=LOCAL_TZ))  # scored and unscored in Q1: on the board at 0
    db.session.commit()
    reset_assessment(parse_period("2026"), policy_in_force(AFTER_2026))
    db.session.commit()
    carol = [(f"assessment:{key}", MEMBER, world["carol"].id) for key in ("2027", "2027-01", "2027-H1", "2027-Q1")]
    subjects = [(MEMBER, world["alice"].id), (MEMBER, world["carol"].id),
                *((SubjectType.ORGANIZATION, world[name].id) for name in ("finance", "fin1"))]
    assert new_year_rows(*subjects) == carol
    alice = principal_for(world["users"]["alice"])
    assert my_rank(alice, parse_period("2027-Q1"), ScopeKind.ALL)["on_board"] is False
    page = leaderboard(alice, MEMBER, "all", parse_period("2027-Q1"), Measure.OWN, 1, 20)
    assert [item["subject"]["id"] for item in page["items"]] == [world["carol"].id] and page["total"] == 1
    assert compare_boards(now=AFTER_2026) == []
    rebuild_boards_from_totals(now=AFTER_2026)
    assert new_year_rows(*subjects) == carol


def test_a_member_reactivated_after_the_yearly_reset_returns_to_no_new_year_board(world):
    entry(world["bob"], 3)
    db.session.commit()
    admin = principal_for(world["users"]["admin"])
    deactivate_member(admin, world["bob"].id, DeactivationReason.RESIGNED, "离职", date(2026, 12, 1))
    reset_assessment(parse_period("2026"), policy_in_force(AFTER_2026))
    db.session.commit()
    reactivate_member(admin, world["bob"].id, "返聘")
    assert new_year_rows() == []
    assert compare_boards(now=AFTER_2026) == []


def test_an_award_capped_to_zero_points_puts_nobody_on_a_board(world):
    entry(world["alice"], 0)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BoardScore)) == 0
    assert my_rank(principal_for(world["users"]["alice"]), parse_period("2026-Q3"), ScopeKind.ALL)["on_board"] is False
    assert compare_boards(now=AFTER_2026) == []
