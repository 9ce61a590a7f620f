"""Concurrent objection decisions on PostgreSQL: two admins upholding objections against two winners of one scope
at once both take effect — the next eligible members replace both, and the run still verifies."""

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.stars import reading as stars_reading
from points_service.domain.stars import runs as stars
from points_service.models import Role, StarRun, User
from tests.concurrency import hammer
from tests.domain.stars.test_runs import candidate, published, star_member, world  # noqa: F401 (fixture)
from tests.factories import make_user
from tests.factories.ledger import local

pytestmark = pytest.mark.postgres


def upholding(user_id: int, run_id: int, objection_id: int):
    def call():
        stars.decide_objection(principal_for(db.session.get(User, user_id)), run_id, objection_id, True,
                               now=local(2026, 10, 13))
        return "ok"
    return call


def test_two_objections_upheld_at_once_in_one_scope_both_replace_their_winner(app, world):  # noqa: F811
    for name, hours in (("alice", 5), ("dave", 4), ("erin", 3), ("carol", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    objections = [stars.raise_objection(world["admin"], run.id, world[name].id, "虚报", now=local(2026, 10, 12)).id
                  for name in ("alice", "dave")]
    admins = [make_user((Role.ADMIN, None), username=f"admin_{n}").id for n in range(2)]
    db.session.commit()
    run_id = run.id

    assert hammer(app, [upholding(admin, run_id, objection)
                        for admin, objection in zip(admins, objections, strict=True)]) == ["ok", "ok"]

    db.session.expire_all()
    run = db.session.get(StarRun, run_id)
    winners = [name for name in ("alice", "dave", "erin", "carol") if candidate(run, world[name]).winner]
    assert winners == ["erin", "carol"] and run.winner_count == 2
    assert stars_reading.verify_star_run(run).matches
