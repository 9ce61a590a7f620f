"""Property: after any awards, reversals, dated transfers, deactivations and reactivations, the maintained boards
equal the set-wise rebuild, and every member's city-wide rank on every board equals a naive competition rank
over an independent model: who is on which board (a deactivated member is off the standing board and every
board of a period ending after his deactivation) and with what score."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.boards.audit import compare_boards
from points_service.domain.boards.keys import CITY, STANDING_BOARD
from points_service.domain.boards.rank import rank_of
from points_service.domain.errors import Conflict, ValidationFailed
from points_service.domain.lifecycle.status import deactivate_member, local_today, reactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import LOCAL_TZ, PeriodKind, parse_period, period_containing
from points_service.models import Affiliation, DeactivationReason, SubjectType
from tests.dbutil import reset_database
from tests.factories import make_member, make_world
from tests.factories.boards import entry, reverse

NOW = utcnow()
LAST_QUARTER = period_containing(NOW, PeriodKind.QUARTER).previous()
# Instants of entries: one in the closed quarter, one in the closed year, one in the open month.
WHEN = [LAST_QUARTER.start + timedelta(days=5), period_containing(NOW, PeriodKind.YEAR).previous().start
        + timedelta(days=40), NOW - timedelta(minutes=5)]
# Effective dates of transfers and deactivations: today, the first of this month, a day late in the closed quarter.
ON = [local_today(NOW), local_today(NOW).replace(day=1),
      (LAST_QUARTER.start + timedelta(days=60)).astimezone(LOCAL_TZ).date()]
REFUSED = (Conflict, ValidationFailed)  # twice, nothing to move, before his current affiliation: not applied

operations = st.lists(st.one_of(
    st.tuples(st.just("award"), st.integers(0, 3), st.integers(-300, 900), st.integers(0, 2)),
    st.tuples(st.just("reverse"), st.integers(0, 30)),
    st.tuples(st.just("transfer"), st.integers(0, 3), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("deactivate"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("reactivate"), st.integers(0, 3)),
), min_size=1, max_size=12)


def boards_of(at: datetime) -> list[str]:
    return [f"assessment:{period_containing(at, kind).key}" for kind in
            (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.HALF, PeriodKind.YEAR)] + [STANDING_BOARD]


def ends_after(board: str, since: datetime) -> bool:
    return board == STANDING_BOARD or parse_period(board.partition(":")[2]).end > since


# No shrinking phase: every example rebuilds a database, so shrinking would take minutes; the case prints as is.
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
# Interleavings that matter, always run: an entry dated before a backdated deactivation, on a board he has left;
# a reversal reaching him while away, then his return and a credit to the rows it restored; a backdated transfer
# before he leaves and comes back.
@example(steps=[("deactivate", 0, 2), ("award", 0, 500, 0), ("award", 1, 300, 0)])
@example(steps=[("award", 0, 700, 0), ("award", 0, 200, 2), ("deactivate", 0, 2), ("reverse", 0),
                ("reactivate", 0), ("award", 0, 100, 2), ("award", 1, 650, 0)])
@example(steps=[("award", 1, 400, 0), ("transfer", 1, 1, 2), ("award", 1, -100, 2), ("deactivate", 1, 0),
                ("reactivate", 1), ("award", 2, 400, 2)])
def test_boards_equal_a_rebuild_and_ranks_a_naive_model_after_any_lifecycle(app, steps):
    reset_database()
    world = make_world()
    admin = principal_for(world["users"]["admin"])
    homes = [(world["fin1"], world["north"], world["north_grid"]), (world["fin2"], world["south"], world["south_grid"]),
             (world["edu1"], world["north"], None)]
    members = [world["alice"], world["bob"], *(make_member(*homes[i % 3]) for i in range(2))]
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2020, 1, 1, tzinfo=LOCAL_TZ)))
    db.session.commit()
    scores: dict[str, dict[int, int]] = defaultdict(dict)  # board → member → hundredths, on the board or not
    away: dict[int, datetime] = {}  # member → the instant he left, while he is deactivated
    written = []
    for step in steps:
        try:
            apply(step, admin, members, homes, written, scores, away)
        except REFUSED:
            db.session.rollback()
        db.session.commit()

    assert compare_boards() == []
    for board, by_member in scores.items():
        present = {m: s for m, s in by_member.items() if m not in away or not ends_after(board, away[m])}
        for member in members:
            mine = present.get(member.id)
            expected = None if mine is None else (1 + sum(other > mine for other in present.values()), mine)
            assert rank_of(board, SubjectType.MEMBER, member.id, CITY) == expected, (board, member.id)


def apply(step, admin, members, homes, written, scores, away) -> None:
    """One step through the use cases (entries through the ledger), and the model's view of it."""
    kind, member = step[0], members[step[1]] if step[0] != "reverse" else None
    if kind == "award":
        at = WHEN[step[3]]
        written.append((entry(member, f"{step[2] / 100:.2f}", at), at, member))
        for board in boards_of(at) if step[2] else ():  # zero points put nobody on a board
            scores[board][member.id] = scores[board].get(member.id, 0) + step[2]
    elif kind == "reverse" and written:
        original, at, owner = written.pop(step[1] % len(written))
        reverse(original, at)
        for board in boards_of(at) if original.points else ():
            scores[board][owner.id] -= int(original.points * 100)
    elif kind == "transfer":
        branch, community, grid = homes[step[2]]
        transfer(admin, member.id, branch_id=branch.id, community_id=community.id,
                 grid_id=grid and grid.id, effective_on=ON[step[3]])
    elif kind == "deactivate":
        deactivate_member(admin, member.id, DeactivationReason.RESIGNED, "离职", ON[step[2]])
        away[member.id] = member.inactive_since
    elif kind == "reactivate":
        reactivate_member(admin, member.id, "返聘")
        away.pop(member.id)

