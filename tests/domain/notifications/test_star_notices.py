"""Publishing a 业务之星 run tells each winner, in his inbox, that he is in publicity and until when."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.stars import runs as stars
from points_service.models import InboxMessage
from tests.domain.stars.test_runs import published, star_member, world  # noqa: F401  (the stars world fixture)
from tests.factories.ledger import local


def test_publishing_a_run_tells_each_winner_until_when_it_is_public(world):  # noqa: F811
    star_member(world["alice"], 4, 3)
    star_member(world["dave"], 4, 3)
    star_member(world["erin"], 1, 1)  # not selected
    run = published(world)
    notified = db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body)
                                  .where(InboxMessage.event == "star_published")).all()
    assert sorted(member_id for member_id, _ in notified) == sorted([world["alice"].id, world["dave"].id])
    assert f"公示至 {run.publicity_ends_on.isoformat()}" in notified[0][1]


def test_a_winner_brought_in_by_an_upheld_objection_is_told_until_when_he_is_public(world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, now=local(2026, 10, 13))

    notified = dict(db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body)
                                       .where(InboxMessage.event == "star_published")).all())
    assert sorted(notified) == sorted([world["alice"].id, world["dave"].id, world["erin"].id])
    assert "公示至 2026-10-20" in notified[world["erin"].id]  # the window restarted for him
