"""The reminder jobs: signed-up members before an activity starts (once per member×activity and start), and
members whose redeemable points expire at the month's end (once per member×month). A moved activity is reminded
of again for its new start, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities import signups as activities
from points_service.domain.notifications.reminders import remind_activities, remind_expiring
from points_service.models import ActivityStatus, InboxMessage, Signup, SignupStatus
from tests.factories import make_world
from tests.factories.activities import draft, make_activity
from tests.factories.ledger import local
from tests.factories.market import fund

NOW = local(2026, 11, 26, 9)


@pytest.fixture
def world(app):
    return make_world()


def inbox(event: str) -> list[tuple[int, str]]:
    return db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body).where(InboxMessage.event == event)
                              .order_by(InboxMessage.member_id)).all()


def sign_up(activity, *members, status=SignupStatus.SIGNED_UP):
    for member in members:
        db.session.add(Signup(activity_id=activity.id, member_id=member.id, status=status))
    db.session.commit()


def test_signed_up_members_are_reminded_once_of_an_activity_starting_within_a_day(world):
    soon = make_activity(world["north"], NOW + timedelta(hours=20))
    sign_up(soon, world["alice"], world["carol"])
    sign_up(soon, world["bob"], status=SignupStatus.WITHDRAWN)
    later = make_activity(world["north"], NOW + timedelta(hours=30))
    cancelled = make_activity(world["north"], NOW + timedelta(hours=3), status=ActivityStatus.CANCELLED)
    sign_up(later, world["alice"])
    sign_up(cancelled, world["alice"])
    assert remind_activities(now=NOW) == {"reminded": 2}
    assert remind_activities(now=NOW + timedelta(hours=1)) == {"reminded": 0}
    reminded = inbox("activity_reminder")
    assert [member_id for member_id, _ in reminded] == sorted([world["alice"].id, world["carol"].id])
    assert "2026-11-27 05:00 开始" in reminded[0][1]  # Asia/Shanghai


def test_members_whose_points_expire_this_month_are_reminded_once_within_the_last_days(world):
    fund(world["alice"], 30, at=local(2025, 10, 5))  # older than 12 months at the end of November 2026
    fund(world["bob"], 20, at=local(2026, 10, 5))  # still valid
    assert remind_expiring(now=local(2026, 11, 10)) == {"reminded": 0}  # the month's end is too far
    assert remind_expiring(now=NOW) == {"reminded": 1}
    assert remind_expiring(now=NOW + timedelta(days=2)) == {"reminded": 0}
    ((member_id, body),) = inbox("points_expiring")
    assert member_id == world["alice"].id
    assert body == "您有 30 公益积分将于 2026-11-30 到期，可到积分超市兑换。"


def move(world, activity, starts_at, title=None):
    activities.edit_activity(principal_for(world["users"]["community_admin"]), activity.id,
                             draft(world["north"], starts_at, title=title or activity.title), now=NOW)


def test_a_member_reminded_before_a_move_is_reminded_once_for_the_new_time_and_not_twice_for_one_time(world):
    first = NOW + timedelta(hours=20)
    activity = make_activity(world["north"], first)
    sign_up(activity, world["alice"])
    assert remind_activities(now=NOW) == {"reminded": 1}

    move(world, activity, NOW + timedelta(hours=22))
    assert remind_activities(now=NOW + timedelta(minutes=5)) == {"reminded": 1}  # for the new time
    assert remind_activities(now=NOW + timedelta(hours=1)) == {"reminded": 0}  # not twice for it
    move(world, activity, NOW + timedelta(hours=22), title="改名不改时间")  # nothing moves: nothing to remind
    assert remind_activities(now=NOW + timedelta(hours=2)) == {"reminded": 0}

    bodies = [body for _, body in inbox("activity_reminder")]
    assert ["2026-11-27 05:00 开始" in b for b in bodies] == [True, False]
    assert "2026-11-27 07:00 开始" in bodies[1]


def test_a_member_moved_back_to_the_time_he_was_reminded_of_is_not_reminded_of_it_again(world):
    activity = make_activity(world["north"], NOW + timedelta(hours=20))
    sign_up(activity, world["alice"])
    remind_activities(now=NOW)
    move(world, activity, NOW + timedelta(hours=40))  # beyond the reminder's 24 hours
    assert remind_activities(now=NOW + timedelta(minutes=5)) == {"reminded": 0}
    move(world, activity, NOW + timedelta(hours=20))  # back: the move's notice tells him, the reminder was sent
    assert remind_activities(now=NOW + timedelta(minutes=10)) == {"reminded": 0}
    assert len(inbox("activity_moved")) == 2
