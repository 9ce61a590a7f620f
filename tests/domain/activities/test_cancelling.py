"""Cancelling an activity: who may, until when, what it writes, whom it tells, and what a cancelled activity
refuses afterwards (sign-ups, check-ins, its code, reminders, the day-after deductions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities import cancelling
from points_service.domain.activities import signups as activities
from points_service.domain.activities.cancelling import ActivityNotCancellable
from points_service.domain.checkin import scans as checkin
from points_service.domain.checkin.consequences import settle_activity_consequences
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound
from points_service.domain.notifications.reminders import remind_activities
from points_service.domain.periods import parse_period
from points_service.domain.policy import policy_in_force
from points_service.models import (
    Activity,
    ActivityStatus,
    ApprovalEvent,
    AuditEntry,
    Delivery,
    InboxMessage,
    LedgerEntry,
    Role,
    SignupStatus,
    SubscriptionGrant,
)
from tests.factories import make_user, make_world
from tests.factories.activities import make_activity, scan
from tests.factories.ledger import local
from tests.factories.notifications import make_grant

NOW = local(2026, 11, 10, 8)
START = local(2026, 11, 11, 9)
REASON = "暴雨预警，活动取消"


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["carol"] = make_user(member=world["carol"])
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    world["users"]["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    world["activity"] = make_activity(world["north"], START)
    db.session.commit()
    return world


def who(world, name):
    return principal_for(world["users"][name])


def sign_up(world, *names, activity=None):
    for name in names:
        activities.sign_up(who(world, name), (activity or world["activity"]).id, now=NOW)


def cancel(world, name="community_admin", activity=None, now=NOW):
    return cancelling.cancel_activity(who(world, name), (activity or world["activity"]).id, REASON, now=now)


def inbox() -> list[tuple[int, str, str, str]]:
    return [tuple(row) for row in db.session.execute(
        sa.select(InboxMessage.member_id, InboxMessage.source_key, InboxMessage.title, InboxMessage.body)
        .where(InboxMessage.event == "activity_cancelled").order_by(InboxMessage.member_id))]


def test_the_host_communitys_admin_cancels_with_an_approval_event_and_an_audit_row(world):
    activity = cancel(world)
    assert activity.status == ActivityStatus.CANCELLED
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status == ActivityStatus.CANCELLED
    event = db.session.scalars(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "activity",
                                                              ApprovalEvent.target_id == activity.id)).one()
    assert (event.from_status, event.to_status, event.comment, event.actor_id) == (
        "published", "cancelled", REASON, world["users"]["community_admin"].id)
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "activity.cancel")).one()
    assert (audit.target_id, audit.detail) == (str(activity.id), {"reason": REASON})


def test_the_members_signed_up_are_told_once_in_their_inbox_and_the_withdrawn_are_not(world):
    sign_up(world, "alice", "carol", "bob")
    activities.withdraw(who(world, "bob"), world["activity"].id, now=NOW)
    make_grant(world["alice"], "activity_reminder", available=1)  # no WeChat template fits: his grant stays
    db.session.commit()
    cancel(world)
    told = inbox()
    assert [member_id for member_id, *_ in told] == [world["alice"].id, world["carol"].id]
    _, key, title, body = told[0]
    assert (key, title) == (f"activity:{world['activity'].id}:cancelled", "活动已取消")
    assert "固定服务日：清理楼道" in body and "2026-11-11 09:00" in body and REASON in body
    assert db.session.scalars(sa.select(Delivery)).all() == []
    assert db.session.scalar(sa.select(SubscriptionGrant.available)) == 1


def test_an_admin_cancels_too_but_the_proposing_organization_and_others_may_not(world):
    proposal = make_activity(world["north"], START, proposed_by=world["fin1"])  # proposed, then published
    db.session.commit()
    for name in ("secretary", "org_admin"):
        with pytest.raises(Forbidden) as refused:
            cancel(world, name, proposal)
        assert refused.value.code == "activity_host_only"
        assert not cancelling.can_cancel(who(world, name), proposal, NOW)
    for name in ("alice", "south_admin", "hr"):  # they see a published activity, and do not manage it
        with pytest.raises(Forbidden) as refused:
            cancel(world, name, proposal)
        assert refused.value.code == "forbidden"
    assert cancelling.can_cancel(who(world, "admin"), proposal, NOW)
    assert cancel(world, "admin", proposal).status == ActivityStatus.CANCELLED


def test_an_activity_one_cannot_see_is_not_found(world):
    hidden = make_activity(world["north"], START, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"])
    db.session.commit()
    with pytest.raises(NotFound):
        cancel(world, "south_admin", hidden)
    with pytest.raises(NotFound):
        cancelling.cancel_activity(who(world, "community_admin"), 2_000_000_000, REASON, now=NOW)


def test_once_someone_has_checked_in_it_is_not_cancelled(world):
    early = START - timedelta(minutes=20)  # check-in opens half an hour before the start
    checkin.check_in(who(world, "alice"), world["activity"].id, scan(world["activity"], early), now=early)
    with pytest.raises(ActivityNotCancellable) as refused:
        cancel(world, now=early + timedelta(minutes=1))
    assert (refused.value.status, refused.value.code) == (409, "activity_not_cancellable")
    assert "签到" in refused.value.message
    assert not cancelling.can_cancel(who(world, "community_admin"), world["activity"], early)
    db.session.expire_all()
    assert db.session.get(Activity, world["activity"].id).status == ActivityStatus.PUBLISHED


def test_a_started_activity_nobody_came_to_is_cancelled_until_it_ends(world):
    assert cancel(world, now=START + timedelta(minutes=30)).status == ActivityStatus.CANCELLED
    ended = make_activity(world["north"], START)
    db.session.commit()
    with pytest.raises(ActivityNotCancellable, match="结束"):
        cancel(world, activity=ended, now=ended.ends_at)


@pytest.mark.parametrize("status", [ActivityStatus.PROPOSED, ActivityStatus.REJECTED, ActivityStatus.CANCELLED])
def test_only_a_published_activity_is_cancelled(world, status):
    activity = make_activity(world["north"], START, status=status, proposed_by=world["fin1"])
    db.session.commit()
    with pytest.raises(ActivityNotCancellable):
        cancel(world, activity=activity)
    assert not cancelling.can_cancel(who(world, "community_admin"), activity, NOW)


def test_of_two_cancellations_at_once_one_wins(world):
    sign_up(world, "alice")
    activity = activities.get_activity(who(world, "community_admin"), world["activity"].id)
    # The other one wrote after this one read the activity: what this one holds still says published.
    db.session.execute(sa.update(Activity).where(Activity.id == activity.id).values(status=ActivityStatus.CANCELLED)
                       .execution_options(synchronize_session=False))
    assert activity.status == ActivityStatus.PUBLISHED
    with pytest.raises(InvalidTransition):
        cancel(world)
    db.session.rollback()
    assert inbox() == [] and db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent)) == 0


def test_a_cancelled_activity_refuses_sign_ups_check_ins_and_its_code(world):
    sign_up(world, "alice")
    cancel(world)
    activity = world["activity"]
    for attempt in (
        lambda: activities.sign_up(who(world, "carol"), activity.id, now=NOW),
        lambda: activities.withdraw(who(world, "alice"), activity.id, now=NOW),
        lambda: checkin.check_in(who(world, "carol"), activity.id, scan(activity, START), now=START),
        lambda: checkin.checkin_code(who(world, "community_admin"), activity.id, now=START),
    ):
        with pytest.raises(activities.ActivityCancelled) as refused:
            attempt()
        assert (refused.value.status, refused.value.code) == (409, "activity_cancelled")


def test_a_cancelled_activity_stays_listed_with_its_status_for_members(world):
    cancel(world)
    alice = who(world, "alice")
    listed = db.session.scalars(activities.list_activities(alice, community_id=world["north"].id)).all()
    assert [(a.id, a.status) for a in listed] == [(world["activity"].id, ActivityStatus.CANCELLED)]
    assert activities.get_activity(alice, world["activity"].id).status == ActivityStatus.CANCELLED


def test_no_reminder_and_no_no_show_deduction_for_a_cancelled_activity(world):
    sign_up(world, "alice", "carol")
    cancel(world)
    assert remind_activities(now=START - timedelta(hours=2)) == {"reminded": 0}
    day = parse_period("2026-11-11")
    assert settle_activity_consequences(day, policy_in_force(START)) == {
        "activities": 0, "no_shows": 0, "no_checkouts": 0}
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    assert {s.status for s in db.session.scalars(sa.select(activities.Signup))} == {SignupStatus.SIGNED_UP}
