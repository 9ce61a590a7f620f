"""Verified check-in and check-out on the server clock (injected), the review of suspicious check-ins,
and what is kept of a member's location (the distance only)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities.signups import ActivityCancelled, ActivityNotOpen
from points_service.domain.checkin import scans as checkin
from points_service.domain.checkin.scans import (
    ActivityChanged,
    AlreadyCheckedIn,
    AlreadyCheckedOut,
    CheckinTokenInvalid,
    OutsideGeofence,
    OutsideTimeWindow,
)
from points_service.domain.errors import Forbidden, InvalidTransition, NotFound
from points_service.models import Activity, ActivityStatus, ApprovalEvent, Checkin, CheckinStatus, LedgerEntry, Role
from tests.factories import make_member, make_user, make_world
from tests.factories.activities import RADIUS_M, make_activity, north_of, scan
from tests.factories.ledger import local

START = local(2026, 11, 10, 9)
END = START + timedelta(hours=2)


@pytest.fixture
def world(app):
    world = make_world()
    world["activity"] = make_activity(world["north"], START)
    db.session.commit()
    return world


def alice(world):
    return principal_for(world["users"]["alice"])


def check_in(world, at, **scan_args):
    return checkin.check_in(alice(world), world["activity"].id, scan(world["activity"], at, **scan_args), now=at)


def check_out(world, row, at, **scan_args):
    return checkin.check_out(alice(world), row.id, scan(world["activity"], at, **scan_args), now=at)


def entries(member) -> list[tuple[str, str, Decimal]]:
    rows = db.session.execute(sa.select(LedgerEntry.item_code, LedgerEntry.ledger, LedgerEntry.points)
                              .where(LedgerEntry.subject_id == member.id).order_by(LedgerEntry.id))
    return [(code, str(ledger), points) for code, ledger, points in rows]


def test_a_member_checks_in_at_the_venue_without_having_signed_up(world):
    row = check_in(world, START)
    assert (row.status, row.member_id, row.checkin_distance_m, row.review_reason) == (
        CheckinStatus.CHECKED_IN, world["alice"].id, 0, "")
    assert entries(world["alice"]) == []


@pytest.mark.parametrize("metres,inside", [(RADIUS_M - 1, True), (RADIUS_M + 1, False)])
def test_the_geofence_is_the_radius_measured_by_haversine(world, metres, inside):
    if inside:
        assert check_in(world, START, metres=metres).checkin_distance_m == RADIUS_M - 1
    else:
        with pytest.raises(OutsideGeofence):
            check_in(world, START, metres=metres)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 0


@pytest.mark.parametrize("at,accepted", [
    (START - timedelta(minutes=30, seconds=1), False),
    (START - timedelta(minutes=30), True),
    (END - timedelta(seconds=1), True),
    (END, False),
])
def test_check_in_is_open_from_half_an_hour_before_the_start_until_the_end(world, at, accepted):
    if accepted:
        assert check_in(world, at).checked_in_at == at
    else:
        with pytest.raises(OutsideTimeWindow):
            check_in(world, at)


def test_the_previous_steps_token_is_accepted_but_not_one_two_steps_old(world):
    activity = world["activity"]
    old = scan(activity, START)
    with pytest.raises(CheckinTokenInvalid):
        checkin.check_in(alice(world), activity.id, old, now=START + timedelta(seconds=60))
    row = checkin.check_in(alice(world), activity.id, old, now=START + timedelta(seconds=30))
    assert row.status == CheckinStatus.CHECKED_IN


def test_a_token_of_another_activity_is_invalid(world):
    other = make_activity(world["north"], START)
    db.session.commit()
    with pytest.raises(CheckinTokenInvalid):
        checkin.check_in(alice(world), world["activity"].id, scan(other, START), now=START)


def test_a_second_check_in_is_refused_by_the_unique_constraint_naming_the_check_in_kept(world):
    first = check_in(world, START)
    with pytest.raises(AlreadyCheckedIn) as refused:
        check_in(world, START + timedelta(minutes=1))
    assert refused.value.data == {"checkin_id": first.id}  # what the phone checks out, if it lost the answer
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 1


def test_a_late_second_check_in_names_the_check_in_kept_and_takes_no_second_deduction(world):
    first = check_in(world, START + timedelta(minutes=11))
    with pytest.raises(AlreadyCheckedIn) as refused:
        check_in(world, START + timedelta(minutes=12), accuracy=350)  # late and for review: one transaction
    assert refused.value.data == {"checkin_id": first.id}
    assert entries(world["alice"]) == [("member.late", "assessment", Decimal("-1.00"))]


def change_after_the_rules_are_read(monkeypatch, world, times=1, **values):
    """Another transaction changes the activity after the check-in read its rules, before its INSERT (``times``
    times: each judgement of the scan is followed by one; a callable value is given how many are left)."""
    verify, left = checkin._verify_geofence, [times]

    def verify_then_change(activity, scan_):
        distance = verify(activity, scan_)
        if left[0]:
            left[0] -= 1
            db.session.execute(sa.update(Activity).where(Activity.id == world["activity"].id).values(
                {name: value(left[0]) if callable(value) else value for name, value in values.items()}))
        return distance

    monkeypatch.setattr(checkin, "_verify_geofence", verify_then_change)


def checkins() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Checkin))


@pytest.mark.parametrize("status,refusal", [(ActivityStatus.CANCELLED, ActivityCancelled),
                                            (ActivityStatus.REJECTED, ActivityNotOpen)])
def test_a_check_in_to_an_activity_no_longer_published_when_it_is_written_writes_nothing(world, monkeypatch, status,
                                                                                       refusal):
    """The INSERT selects from the activity's row only while it is published: a cancel committed between the
    rules' read and the INSERT leaves nothing written, answered as a check-in to a cancelled activity is."""
    change_after_the_rules_are_read(monkeypatch, world, status=status)
    with pytest.raises(refusal) as refused:
        check_in(world, START)
    assert refused.value.code == refusal.code and checkins() == 0


def test_a_check_in_to_an_activity_moved_when_it_is_written_is_judged_by_the_activity_as_moved(world, monkeypatch):
    change_after_the_rules_are_read(monkeypatch, world, starts_at=START + timedelta(days=1),
                                    ends_at=END + timedelta(days=1))
    with pytest.raises(OutsideTimeWindow):
        check_in(world, START)
    assert checkins() == 0


def test_a_check_in_still_valid_at_the_activity_as_edited_is_written_once_judged_again(world, monkeypatch):
    change_after_the_rules_are_read(monkeypatch, world, radius_m=RADIUS_M + 50)
    row = check_in(world, START, metres=RADIUS_M - 1)
    assert (row.status, row.checkin_distance_m, checkins()) == (CheckinStatus.CHECKED_IN, RADIUS_M - 1, 1)


def test_an_activity_edited_at_every_judgement_of_the_scan_is_answered_changed(world, monkeypatch):
    change_after_the_rules_are_read(monkeypatch, world, times=checkin.CHECKIN_ATTEMPTS,
                                    radius_m=lambda left: RADIUS_M + 10 * (left + 1))
    with pytest.raises(ActivityChanged):
        check_in(world, START)
    assert checkins() == 0


def test_a_check_in_more_than_ten_minutes_late_costs_the_late_deduction_once(world):
    check_in(world, START + timedelta(minutes=11))
    assert entries(world["alice"]) == [("member.late", "assessment", Decimal("-1.00"))]


def test_a_check_in_ten_minutes_after_the_start_is_not_late(world):
    check_in(world, START + timedelta(minutes=10))
    assert entries(world["alice"]) == []


def test_poor_accuracy_sends_the_check_in_to_review_with_its_reason(world):
    row = check_in(world, START, accuracy=350)
    assert row.status == CheckinStatus.REVIEW and "350" in row.review_reason
    event = db.session.scalar(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "checkin"))
    assert (event.from_status, event.to_status) == ("", "review")


@pytest.mark.parametrize("km,status", [(6, CheckinStatus.REVIEW), (4, CheckinStatus.CHECKED_IN)])
def test_a_far_away_venue_within_half_an_hour_sends_the_second_check_in_to_review(world, km, status):
    check_in(world, START)
    far = make_activity(world["north"], START, lat=north_of(km * 1000))
    db.session.commit()
    at = START + timedelta(minutes=20)
    row = checkin.check_in(alice(world), far.id, scan(far, at), now=at)
    assert row.status == status


def test_check_out_credits_the_hours_rounded_down_to_the_half_hour_once(world):
    row = check_in(world, START)
    row = check_out(world, row, START + timedelta(minutes=100))
    assert (row.status, row.hours, row.checkout_distance_m) == (CheckinStatus.CHECKED_OUT, Decimal("1.5"), 0)
    assert entries(world["alice"]) == [("member.activity_hour", "assessment", Decimal("1.50")),
                                       ("member.activity_hour", "redeemable", Decimal("1.50"))]
    with pytest.raises(AlreadyCheckedOut):
        check_out(world, row, START + timedelta(minutes=101))
    assert len(entries(world["alice"])) == 2


def test_check_out_reads_the_check_in_its_activity_and_its_member_in_one_statement(world, statements):
    row_id, actor, at = check_in(world, START).id, alice(world), START + timedelta(minutes=100)
    checkout_scan, activity_id, name = scan(world["activity"], at), world["activity"].id, world["alice"].name
    db.session.expunge_all()  # nothing in the session: what the check-out needs, it reads
    statements.clear()
    row = checkin.check_out(actor, row_id, checkout_scan, now=at)
    assert (row.activity.id, row.member.name) == (activity_id, name)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    checkin_reads = [s for s in reads if re.search(r"\bFROM checkins\b", s)]
    assert len(checkin_reads) == 1 and " activities" in checkin_reads[0] and " members" in checkin_reads[0]
    assert not [s for s in reads if re.search(r"\bFROM activities\b", s)]


def test_hours_beyond_the_items_per_activity_maximum_are_not_credited(world):
    long = make_activity(world["north"], START, hours=6)
    db.session.commit()
    row = checkin.check_in(alice(world), long.id, scan(long, START), now=START)
    at = START + timedelta(hours=6)
    row = checkin.check_out(alice(world), row.id, scan(long, at), now=at)
    assert row.hours == Decimal(6)
    assert {points for _, _, points in entries(world["alice"])} == {Decimal(4)}


def test_under_half_an_hour_checks_out_without_crediting_anything(world):
    row = check_out(world, check_in(world, START), START + timedelta(minutes=29))
    assert (row.status, row.hours) == (CheckinStatus.CHECKED_OUT, Decimal(0))
    assert entries(world["alice"]) == []


def test_check_out_outside_the_geofence_or_after_the_window_changes_nothing(world):
    row = check_in(world, START)
    with pytest.raises(OutsideGeofence):
        check_out(world, row, START + timedelta(hours=1), metres=RADIUS_M + 1)
    with pytest.raises(OutsideTimeWindow):
        check_out(world, row, END + timedelta(minutes=30))
    row = db.session.get(Checkin, row.id)
    assert (row.status, row.checked_out_at) == (CheckinStatus.CHECKED_IN, None)


def test_a_check_out_before_the_start_is_refused_and_the_member_checks_out_properly_later(world):
    row = check_in(world, START - timedelta(minutes=20))
    with pytest.raises(OutsideTimeWindow) as refused:
        check_out(world, row, START - timedelta(minutes=5))
    assert "开始后" in refused.value.message
    db.session.rollback()
    stored = db.session.get(Checkin, row.id)
    assert (stored.status, stored.checked_out_at, stored.hours) == (CheckinStatus.CHECKED_IN, None, None)
    assert entries(world["alice"]) == []
    row = check_out(world, stored, START + timedelta(minutes=90))
    assert (row.status, row.hours) == (CheckinStatus.CHECKED_OUT, Decimal("1.5"))


def test_nobody_checks_out_someone_elses_check_in(world):
    row = check_in(world, START)
    bob = principal_for(world["users"]["bob"])
    with pytest.raises(NotFound):
        checkin.check_out(bob, row.id, scan(world["activity"], END), now=END)


def test_a_check_in_under_review_credits_its_hours_only_when_approved(world):
    row = check_out(world, check_in(world, START, accuracy=500), END)
    assert (row.status, row.hours) == (CheckinStatus.REVIEW, Decimal(2)) and entries(world["alice"]) == []
    admin = principal_for(world["users"]["community_admin"])
    row = checkin.resolve_review(admin, row.id, True, comment="现场照片已核实", now=END)
    assert row.status == CheckinStatus.CHECKED_OUT
    assert [points for _, _, points in entries(world["alice"])] == [Decimal(2), Decimal(2)]
    events = db.session.scalars(sa.select(ApprovalEvent.to_status).where(ApprovalEvent.target_type == "checkin")
                                .order_by(ApprovalEvent.id)).all()
    assert events == ["review", "checked_out"]


def test_an_approved_review_before_check_out_lets_the_member_check_out_normally(world):
    row = check_in(world, START, accuracy=500)
    admin = principal_for(world["users"]["community_admin"])
    assert checkin.resolve_review(admin, row.id, True, now=START).status == CheckinStatus.CHECKED_IN
    assert check_out(world, row, END).status == CheckinStatus.CHECKED_OUT
    assert len(entries(world["alice"])) == 2


def test_a_rejected_review_credits_nothing_and_is_decided_once(world):
    row = check_out(world, check_in(world, START, accuracy=500), END)
    admin = principal_for(world["users"]["community_admin"])
    assert checkin.resolve_review(admin, row.id, False, now=END).status == CheckinStatus.REJECTED
    with pytest.raises(InvalidTransition):
        checkin.resolve_review(admin, row.id, True, now=END)
    assert entries(world["alice"]) == []


def test_a_check_in_not_under_review_cannot_be_reviewed(world):
    row = check_in(world, START)
    with pytest.raises(InvalidTransition):
        checkin.resolve_review(principal_for(world["users"]["community_admin"]), row.id, True, now=START)


def test_reviews_belong_to_the_activitys_community_admin_and_never_to_the_member_himself(world):
    row = check_in(world, START, accuracy=500)
    south_admin = make_user((Role.COMMUNITY_ADMIN, world["south"].id))
    dave = make_member(world["fin1"], world["north"], name="赵大卫")
    dave_admin = make_user((Role.COMMUNITY_ADMIN, world["north"].id), member=dave)
    db.session.commit()
    for user in (south_admin, world["users"]["secretary"]):  # outside their scope: like a missing check-in
        with pytest.raises(NotFound):
            checkin.resolve_review(principal_for(user), row.id, True, now=START)
    with pytest.raises(Forbidden):
        checkin.resolve_review(principal_for(world["users"]["alice"]), row.id, True, now=START)
    own = checkin.check_in(principal_for(dave_admin), world["activity"].id, scan(world["activity"], START,
                                                                                accuracy=500), now=START)
    with pytest.raises(Forbidden) as refused:
        checkin.resolve_review(principal_for(dave_admin), own.id, True, now=START)
    assert refused.value.code == "self_review"


def test_no_raw_coordinates_are_stored_only_distances(world):
    columns = {column.name for column in Checkin.__table__.columns}
    assert not {name for name in columns if any(part in name for part in ("lat", "lng", "lon", "coord", "accur"))}
    posted = scan(world["activity"], START, metres=42.4, accuracy=350)
    checkin.check_in(alice(world), world["activity"].id, posted, now=START)
    row = db.session.execute(sa.text("SELECT * FROM checkins")).mappings().one()
    assert row["checkin_distance_m"] == 42
    assert not {posted.lat, posted.lng, posted.accuracy_m} & {value for value in row.values()}


def test_the_organizer_gets_a_code_that_checks_in_now_and_a_member_gets_none(world):
    activity = world["activity"]
    issued = checkin.checkin_code(principal_for(world["users"]["community_admin"]), activity.id, now=START)
    assert issued.expires_at > START and len(issued.token) <= 32
    row = checkin.check_in(alice(world), activity.id, scan(activity, START, token=issued.token), now=START)
    assert row.status == CheckinStatus.CHECKED_IN
    with pytest.raises(Forbidden):
        checkin.checkin_code(alice(world), activity.id, now=START)


def test_a_proposed_activity_has_no_code_and_takes_no_check_ins(world):
    proposed = make_activity(world["north"], START, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"])
    db.session.commit()
    with pytest.raises(InvalidTransition):
        checkin.checkin_code(principal_for(world["users"]["secretary"]), proposed.id, now=START)
    with pytest.raises(NotFound):
        checkin.check_in(alice(world), proposed.id, scan(proposed, START), now=START)
