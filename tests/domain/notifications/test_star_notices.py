"""Publishing a 业务之星 run tells each winner, in his inbox, that he is in publicity and until when."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.models import InboxMessage
from tests.domain.stars.test_runs import published, star_member, world  # noqa: F401  (the stars world fixture)


def test_publishing_a_run_tells_each_winner_until_when_it_is_public(world):  # noqa: F811
    star_member(world["alice"], 4, 3)
    star_member(world["dave"], 4, 3)
    star_member(world["erin"], 1, 1)  # not selected
    run = published(world)
    notified = db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body)
                                  .where(InboxMessage.event == "star_published")).all()
    assert sorted(member_id for member_id, _ in notified) == sorted([world["alice"].id, world["dave"].id])
    assert f"公示至 {run.publicity_ends_on.isoformat()}" in notified[0][1]
