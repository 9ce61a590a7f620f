"""Property: after any awards, deductions, reversals and transfers, ``rank_of`` and the one-statement ranks of
GET /me/rank (with the scope's size) and GET /me, in every scope, equal a naive competition rank computed in
Python from an independent model of the scores, and the maintained boards equal the set-wise rebuild."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from points_service.db import db, utcnow
from points_service.domain.boards.audit import compare_boards
from points_service.domain.boards.keys import CITY, STANDING_BOARD, Scope, ScopeKind
from points_service.domain.boards.rank import member_ranks, own_rank, rank_of
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.structure import transfer_member
from points_service.models import Affiliation, SubjectType
from tests.board_factories import entry, reverse
from tests.dbutil import reset_database
from tests.factories import make_member, make_world

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
            for board in boards_of(WHEN[when]):
                scores[board][member.id] = scores[board].get(member.id, 0) + cents
                where = placement(member) if board in open_boards else first_home[member.id]
                places[board].setdefault(member.id, where)
        elif step[0] == "reverse" and written:
            original, at, member = written.pop(step[1] % len(written))
            reverse(original, at)
            for board in boards_of(at):
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
    assert compare_boards() == []
