"""The day after an activity: no-show and no-check-out deductions, exactly once."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities import signups as activities
from points_service.domain.checkin import scans as checkin
from points_service.domain.checkin.consequences import settle_activity_consequences
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.periods import parse_period
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.jobs.scheduler import fire
from points_service.models import (
    ActivityStatus,
    Affiliation,
    Checkin,
    CheckinStatus,
    DeactivationReason,
    JobRunStatus,
    LedgerEntry,
    Signup,
    SourceType,
)
from tests.factories import make_user, make_world
from tests.factories.activities import make_activity, scan
from tests.factories.ledger import install_policy, local

START = local(2026, 11, 10, 9)
END = START + timedelta(hours=2)
DAY = parse_period("2026-11-10")
SPEC = JOBS_BY_ID["activity_consequences"]


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["carol"] = make_user(member=world["carol"])
    world["activity"] = make_activity(world["north"], START)
    db.session.commit()
    return world


def as_user(world, name):
    return principal_for(world["users"][name])


def sign_up(world, name, activity=None):
    activities.sign_up(as_user(world, name), (activity or world["activity"]).id, now=START - timedelta(days=1))


def check_in(world, name, activity=None):
    activity = activity or world["activity"]
    return checkin.check_in(as_user(world, name), activity.id, scan(activity, START), now=START)


def deductions() -> list[tuple[int, str, Decimal, str]]:
    rows = db.session.execute(sa.select(LedgerEntry.subject_id, LedgerEntry.item_code, LedgerEntry.points,
                                        LedgerEntry.source_id).where(LedgerEntry.points < 0)
                              .order_by(LedgerEntry.subject_id, LedgerEntry.item_code))
    return [tuple(row) for row in rows]


def test_a_signed_up_member_who_never_checked_in_gets_the_no_show_deduction_once(world):
    sign_up(world, "alice")
    run = run_job(SPEC, DAY)
    assert run.result == {"activities": 1, "no_shows": 1, "no_checkouts": 0}
    activity_id, alice_id = world["activity"].id, world["alice"].id
    assert deductions() == [(alice_id, "member.no_show", Decimal(-5), f"noshow:{activity_id}:{alice_id}")]
    assert db.session.scalar(sa.select(LedgerEntry.source_type)) == SourceType.JOB
    assert run_job(SPEC, DAY) is None
    settle_activity_consequences(DAY, policy_in_force(END))  # even without the claim: the keys hold
    db.session.commit()
    assert len(deductions()) == 1


def test_a_check_in_never_checked_out_becomes_no_checkout_with_its_deduction(world):
    sign_up(world, "bob")
    row = check_in(world, "bob")
    assert run_job(SPEC, DAY).result == {"activities": 1, "no_shows": 0, "no_checkouts": 1}
    assert db.session.get(Checkin, row.id).status == CheckinStatus.NO_CHECKOUT
    assert [(item, points) for _, item, points, _ in deductions()] == [("member.no_checkout", Decimal(-1))]


def test_members_deactivated_since_cost_nothing_and_do_not_fail_the_run_for_the_others(world):
    for name in ("alice", "bob", "carol"):
        sign_up(world, name)
    open_checkin = check_in(world, "carol")
    admin = as_user(world, "admin")
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    for name in ("bob", "carol"):  # the evening the activity ended: his sign-up to it is not withdrawn
        deactivate_member(admin, world[name].id, DeactivationReason.RESIGNED, "离职", DAY.start.date(),
                          now=local(2026, 11, 10, 20))
    run = run_job(SPEC, DAY)
    assert run.status == JobRunStatus.SUCCEEDED
    assert run.result == {"activities": 1, "no_shows": 1, "no_checkouts": 0}
    assert [(member, item) for member, item, _, _ in deductions()] == [(world["alice"].id, "member.no_show")]
    assert db.session.get(Checkin, open_checkin.id).status == CheckinStatus.NO_CHECKOUT


def test_withdrawn_members_and_members_or_walk_ins_who_checked_out_cost_nothing(world):
    sign_up(world, "carol")
    activities.withdraw(as_user(world, "carol"), world["activity"].id, now=START - timedelta(hours=1))
    sign_up(world, "alice")
    alice_row = check_in(world, "alice")
    checkin.check_out(as_user(world, "alice"), alice_row.id, scan(world["activity"], END), now=END)
    walk_in = check_in(world, "bob")
    checkin.check_out(as_user(world, "bob"), walk_in.id, scan(world["activity"], END), now=END)
    assert run_job(SPEC, DAY).result == {"activities": 1, "no_shows": 0, "no_checkouts": 0}
    assert deductions() == []


def test_only_published_activities_that_ended_by_the_end_of_the_day_are_settled(world):
    tomorrow = make_activity(world["north"], START + timedelta(days=1))
    cancelled = make_activity(world["north"], START, status=ActivityStatus.CANCELLED)
    db.session.commit()
    sign_up(world, "alice", tomorrow)
    db.session.add(Signup(activity_id=cancelled.id, member_id=world["bob"].id))  # signed up before it was cancelled
    db.session.commit()
    assert run_job(SPEC, DAY).result == {"activities": 1, "no_shows": 0, "no_checkouts": 0}
    assert deductions() == []


def test_the_daily_run_at_one_oclock_settles_the_previous_day(app, world):
    sign_up(world, "alice")
    run = fire(app, "activity_consequences", now=local(2026, 11, 11, 1, 5))[-1]  # after the week's earlier days
    assert run["period"] == "2026-11-10" and run["status"] == "succeeded"
    assert len(deductions()) == 1


def _no_show_item_recoded(document):
    document["items"]["member.no_show_2027"] = copy.deepcopy(document["items"]["member.no_show"])
    document["items"]["member.no_show_2027"]["name"] = "报名后无故缺席（新版）"
    document["events"]["no_show"] = "member.no_show_2027"


def test_a_later_policy_pointing_no_show_at_another_item_does_not_deduct_a_no_show_again(world):
    install_policy()
    install_policy(_no_show_item_recoded, effective_from=local(2026, 11, 11))
    sign_up(world, "alice")
    sign_up(world, "bob")
    check_in(world, "bob")
    assert run_job(SPEC, DAY).result == {"activities": 1, "no_shows": 1, "no_checkouts": 1}
    # The next day's run looks at the activity again under the new version: still priced as when it ended.
    assert run_job(SPEC, parse_period("2026-11-11")).status == JobRunStatus.SUCCEEDED
    alice_id, bob_id = world["alice"].id, world["bob"].id
    assert [(member, item, points) for member, item, points, _ in deductions()] == [
        (alice_id, "member.no_show", Decimal(-5)), (bob_id, "member.no_checkout", Decimal(-1))]
