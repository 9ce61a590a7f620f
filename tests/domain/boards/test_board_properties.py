"""Property: after any awards, deductions, reversals and transfers, ``rank_of``, the one-statement ranks of
GET /me/rank (with the scope's size) and GET /me, and a leaderboard page's ``me``, in every scope, equal a naive
competition rank computed in Python from an independent model of the scores, and the maintained boards equal the
set-wise rebuild."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from points_service.db import db, utcnow
from points_service.domain.access import Grant, Principal
from points_service.domain.boards.audit import compare_boards
from points_service.domain.boards.keys import CITY, STANDING_BOARD, Scope, ScopeKind, period_of_board
from points_service.domain.boards.pages import leaderboard
from points_service.domain.boards.rank import Measure, member_ranks, own_rank, rank_of
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.structure import transfer_member
from points_service.models import Affiliation, Role, ScopeType, SubjectType
from tests.dbutil import reset_database
from tests.factories import make_member, make_world
from tests.factories.boards import entry, reverse

NOW = utcnow()
# Instants: two in closed periods (last quarter, last year), one in the open month.
WHEN = [period_containing(NOW, PeriodKind.QUARTER).previous().start + timedelta(days=5),
        period_containing(NOW, PeriodKind.YEAR).previous().start + timedelta(days=40),
        NOW - timedelta(minutes=5)]

operations = st.lists(st.one_of(
    st.tuples(st.just("award"), st.integers(0, 5), st.integers(-300, 900), st.integers(0, 2)),
    st.tuples(st.just("reverse"), st.integers(0, 30)),
    st.tuples(st.just("transfer"), st.integers(0, 5), st.integers(0, 2)),
), min_size=1, max_size=10)


def boards_of(at: datetime) -> list[str]:
    return [f"assessment:{period_containing(at, kind).key}" for kind in
            (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.HALF, PeriodKind.YEAR)] + [STANDING_BOARD]


def placement(member) -> dict[ScopeKind, int | None]:
    return {ScopeKind.COMMUNITY: member.community_id, ScopeKind.GRID: member.grid_id,
            ScopeKind.BRANCH: member.branch_id, ScopeKind.DEPARTMENT: member.branch.parent_id}


# No shrinking phase: every example rebuilds a database, so shrinking would take minutes; the case prints as is.
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_rank_of_equals_a_naive_competition_rank_after_any_history(app, steps):
    reset_database()
    world = make_world()
    homes = [(world["fin1"], world["north"], world["north_grid"]), (world["fin2"], world["south"], world["south_grid"]),
             (world["edu1"], world["north"], None)]
    members = [world["alice"], world["bob"], world["carol"],
               *(make_member(*homes[i % 3]) for i in range(3))]
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2020, 1, 1, tzinfo=UTC)))
    db.session.commit()
    open_boards = set(boards_of(NOW))
    first_home = {member.id: placement(member) for member in members}  # where closed periods ended for them
    scores: dict[str, dict[int, int]] = defaultdict(dict)
    places: dict[str, dict[int, dict]] = defaultdict(dict)
    written = []
    for step in steps:
        if step[0] == "award":
            _, who, cents, when = step
            member = members[who]
            written.append((entry(member, f"{cents / 100:.2f}", WHEN[when]), WHEN[when], member))
            for board in boards_of(WHEN[when]) if cents else ():  # zero points put nobody on a board
                scores[board][member.id] = scores[board].get(member.id, 0) + cents
                where = placement(member) if board in open_boards else first_home[member.id]
                places[board].setdefault(member.id, where)
        elif step[0] == "reverse" and written:
            original, at, member = written.pop(step[1] % len(written))
            reverse(original, at)
            for board in boards_of(at) if original.points else ():
                scores[board][member.id] -= int(original.points * 100)
        elif step[0] == "transfer":
            member = members[step[1]]
            transfer_member(member, *homes[step[2]])
            db.session.flush()
            for board in open_boards:
                if member.id in places[board]:
                    places[board][member.id] = placement(member)
        db.session.commit()

    every_scope = {board: {member_id: {scope.kind: rank for scope, rank in
                                       member_ranks(member_id, [board])[board]["ranks"]} for member_id in by_member}
                   for board, by_member in scores.items()}
    for board, by_member in scores.items():
        for member_id, score in by_member.items():
            for kind in (ScopeKind.ALL, ScopeKind.COMMUNITY, ScopeKind.GRID, ScopeKind.BRANCH, ScopeKind.DEPARTMENT):
                scope_id = None if kind is ScopeKind.ALL else places[board][member_id][kind]
                if kind is not ScopeKind.ALL and scope_id is None:
                    continue
                inside = [s for m, s in by_member.items()
                          if kind is ScopeKind.ALL or places[board][m][kind] == scope_id]
                scope = CITY if kind is ScopeKind.ALL else Scope(kind, scope_id)
                expected = 1 + sum(other > score for other in inside)
                assert rank_of(board, SubjectType.MEMBER, member_id, scope) == (expected, score), (board, scope)
                card = own_rank(board, member_id, kind, with_total=True)  # GET /me/rank
                assert (card.rank, card.score, card.total) == (expected, score, len(inside)), (board, scope)
                assert every_scope[board][member_id][kind] == expected, (board, scope)  # GET /me
        for member_id in members_ids(members):
            for scope in all_scopes(world):  # a page's "me": his place in the scopes he is in, else None
                inside = [s for m, s in by_member.items() if scope.kind is ScopeKind.ALL
                          or places[board].get(m, {}).get(scope.kind) == scope.id]
                mine = by_member.get(member_id)
                expected = None if mine is None or (scope.kind is not ScopeKind.ALL and places[board].get(
                    member_id, {}).get(scope.kind) != scope.id) else (1 + sum(o > mine for o in inside), mine)
                for page in (1, 1000):  # a page with rows carries "me"; past the last page it is looked up
                    assert page_me(board, scope, member_id, page) == expected, (board, scope, member_id, page)
    assert compare_boards() == []


def members_ids(members) -> list[int]:
    return [member.id for member in members]


def all_scopes(world) -> list[Scope]:
    return [CITY, *(Scope(ScopeKind.COMMUNITY, world[name].id) for name in ("north", "south")),
            *(Scope(ScopeKind.GRID, world[name].id) for name in ("north_grid", "south_grid")),
            *(Scope(ScopeKind.BRANCH, world[name].id) for name in ("fin1", "fin2", "edu1")),
            *(Scope(ScopeKind.DEPARTMENT, world[name].parent_id) for name in ("fin1", "edu1"))]


def page_me(board: str, scope: Scope, member_id: int, page: int) -> tuple[int, int] | None:
    """The ``me`` of a page (size 1) of a board as the member sees it (an admin grant lets him see all)."""
    viewer = Principal(user_id=0, member_id=member_id, grants=(Grant(Role.ADMIN, ScopeType.CITY, None, ""),))
    text = "all" if scope.kind is ScopeKind.ALL else (
        f"organization:{scope.id}" if scope.kind in (ScopeKind.BRANCH, ScopeKind.DEPARTMENT) else f"region:{scope.id}")
    me = leaderboard(viewer, SubjectType.MEMBER, text, period_of_board(board), Measure.OWN, page, 1)["me"]
    return None if me is None else (me["rank"], int(me["points"] * 100))
