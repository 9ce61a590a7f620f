"""Moving a published activity (its time or venue, through ``edit_activity``) tells every member signed up, in his
inbox, the new time and place, once per move and in the edit's transaction; an edit that moves nothing tells
nobody."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities import signups as activities
from points_service.domain.activities.signups import Venue
from points_service.domain.errors import Conflict
from points_service.models import Delivery, InboxMessage, SubscriptionGrant
from tests.factories import make_user, make_world
from tests.factories.activities import RADIUS_M, VENUE_LAT, VENUE_LNG, draft, make_activity
from tests.factories.ledger import local
from tests.factories.notifications import make_grant

NOW = local(2026, 11, 10, 8)
START = local(2026, 11, 11, 9)


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["carol"] = make_user(member=world["carol"])
    world["activity"] = make_activity(world["north"], START)
    db.session.commit()
    for name in ("alice", "carol", "bob"):
        activities.sign_up(who(world, name), world["activity"].id, now=NOW)
    activities.withdraw(who(world, "bob"), world["activity"].id, now=NOW)
    return world


def who(world, name):
    return principal_for(world["users"][name])


def edit(world, starts_at=START, **overrides):
    values = {"title": world["activity"].title, **overrides}
    return activities.edit_activity(who(world, "community_admin"), world["activity"].id,
                                    draft(world["north"], starts_at, **values), now=NOW)


def moved() -> list[tuple[int, str, str, str]]:
    return [tuple(row) for row in db.session.execute(
        sa.select(InboxMessage.member_id, InboxMessage.source_key, InboxMessage.title, InboxMessage.body)
        .where(InboxMessage.event == "activity_moved").order_by(InboxMessage.id))]


def test_moving_a_published_activity_tells_each_member_signed_up_its_new_time_and_place(world):
    edit(world, START + timedelta(days=1))

    notices = moved()
    assert [member_id for member_id, *_ in notices] == [world["alice"].id, world["carol"].id]  # not bob: withdrawn
    _, source_key, title, body = notices[0]
    assert source_key.startswith(f"activity:{world['activity'].id}:moved:") and title == "活动时间地点变更"
    assert "2026-11-12 09:00 至 2026-11-12 11:00" in body  # Asia/Shanghai
    assert "北门社区" in body and "签到位置不变" in body


def test_moving_only_the_venue_tells_them_the_check_in_place_moved(world):
    edit(world, venue=Venue(VENUE_LAT + 0.01, VENUE_LNG, RADIUS_M))
    (*_, body), _ = moved()
    assert "2026-11-11 09:00 至 2026-11-11 11:00" in body and "签到位置已调整" in body


@pytest.mark.parametrize("overrides", [
    {"title": "固定服务日：清理楼道和车棚"}, {"capacity": 10}, {"venue": Venue(VENUE_LAT, VENUE_LNG, RADIUS_M * 2)},
], ids=["title", "capacity", "radius"])
def test_an_edit_that_changes_neither_the_time_nor_the_venue_tells_nobody(world, overrides):
    edit(world, **overrides)
    assert moved() == []


def test_each_move_is_told_once_and_saving_it_again_unchanged_tells_nothing_more(world):
    edit(world, START + timedelta(days=1))
    edit(world, START + timedelta(days=1))  # the same form sent again: nothing moves
    edit(world, START)  # moved back: a move of its own
    bodies = [body for member_id, _, _, body in moved() if member_id == world["alice"].id]
    assert len(bodies) == 2 and "2026-11-11 09:00" in bodies[1]
    assert len({key for _, key, _, _ in moved()}) == 2


def test_a_move_is_told_in_the_inbox_only_and_spends_no_grant(world):
    make_grant(world["alice"], "activity_reminder", available=1)
    db.session.commit()
    edit(world, START + timedelta(hours=2))
    assert len(moved()) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0
    assert db.session.scalar(sa.select(SubscriptionGrant.available)) == 1


def test_a_refused_move_tells_nobody(world):
    with pytest.raises(Conflict):  # two members are signed up: a capacity of one is refused, the move with it
        edit(world, START + timedelta(days=1), capacity=1)
    db.session.rollback()
    assert moved() == []
