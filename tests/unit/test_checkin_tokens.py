"""The pure check-in rules: rotating tokens at step boundaries, haversine, windows and hours."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points_service.domain.checkin import tokens as rules

STEP = 30
SECRET = "a" * 64
# 2026-11-01 01:00:00 UTC is a step boundary (divisible by 30 s).
STEP_START = datetime(2026, 11, 1, 1, 0, 0, tzinfo=UTC)
START = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


def token_at(at: datetime, activity_id: int = 7, secret: str = SECRET) -> str:
    return rules.issue_token(activity_id, secret, at, STEP).token


def valid(token: str, at: datetime, activity_id: int = 7, secret: str = SECRET) -> bool:
    return rules.token_is_valid(token, activity_id, secret, at, STEP)


def test_a_token_is_compact_enough_for_a_mini_program_scene():
    token = rules.issue_token(2_000_000_000, SECRET, datetime(2100, 1, 1, tzinfo=UTC), 1).token
    assert len(token) <= 32
    assert re.fullmatch(r"[0-9a-z]+\.[0-9a-z]+\.[a-z2-7]{12}", token)


def test_a_token_is_accepted_throughout_its_own_step():
    token = token_at(STEP_START)
    assert valid(token, STEP_START) and valid(token, STEP_START + timedelta(seconds=29.999))


def test_a_token_of_the_previous_step_is_still_accepted():
    token = token_at(STEP_START)
    assert valid(token, STEP_START + timedelta(seconds=30))
    assert valid(token, STEP_START + timedelta(seconds=59))


def test_a_token_two_steps_old_is_refused():
    token = token_at(STEP_START)
    assert not valid(token, STEP_START + timedelta(seconds=60))


def test_a_token_from_the_future_is_refused():
    assert not valid(token_at(STEP_START + timedelta(seconds=30)), STEP_START)


def test_the_expiry_reported_is_the_first_instant_the_token_is_refused():
    issued = rules.issue_token(7, SECRET, STEP_START + timedelta(seconds=10), STEP)
    assert issued.expires_at == STEP_START + timedelta(seconds=60)
    assert valid(issued.token, issued.expires_at - timedelta(microseconds=1))
    assert not valid(issued.token, issued.expires_at)


def test_a_token_of_another_activity_is_refused_even_with_the_same_secret():
    assert not valid(token_at(STEP_START, activity_id=8), STEP_START, activity_id=7)


def test_a_token_signed_with_another_secret_is_refused():
    assert not valid(token_at(STEP_START, secret="b" * 64), STEP_START)


@pytest.mark.parametrize("forge", [
    lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # one signature character changed
    lambda t: "0" + t,  # the same numbers spelt differently
    lambda t: t.upper(),
    lambda t: t + "x",
    lambda t: "",
    lambda t: "7.1.aaaaaaaaaaaa",
    lambda t: "é" * 20,
    lambda t: t * 2,
])
def test_a_forged_or_altered_token_is_refused(forge):
    assert not valid(forge(token_at(STEP_START)), STEP_START)


def test_haversine_measures_a_known_distance():
    # One degree of latitude is about 111.2 km on the mean sphere.
    assert rules.haversine_m(35.0, 116.0, 36.0, 116.0) == pytest.approx(111_195, abs=1)
    assert rules.haversine_m(35.4, 116.6, 35.4, 116.6) == 0


def test_haversine_north_of_a_point_by_a_given_number_of_metres_is_that_distance():
    delta = math.degrees(150 / rules.EARTH_RADIUS_M)
    assert rules.haversine_m(35.4, 116.6, 35.4 + delta, 116.6) == pytest.approx(150, abs=1e-6)


@pytest.mark.parametrize("at,open_", [
    (START - timedelta(minutes=30, microseconds=1), False),
    (START - timedelta(minutes=30), True),
    (START, True),
    (END - timedelta(microseconds=1), True),
    (END, False),
])
def test_check_in_opens_half_an_hour_before_the_start_and_closes_at_the_end(at, open_):
    assert rules.checkin_open(START, END, at) is open_


@pytest.mark.parametrize("at,open_", [
    (START + timedelta(minutes=5), True),
    (END + timedelta(minutes=30) - timedelta(microseconds=1), True),
    (END + timedelta(minutes=30), False),
    (START - timedelta(seconds=1), False),  # before the check-in itself
])
def test_check_out_closes_half_an_hour_after_the_end(at, open_):
    assert rules.checkout_open(START, END, START, at) is open_


@pytest.mark.parametrize("at,open_", [
    (START - timedelta(minutes=10), False),  # checked in early: not before the start
    (START - timedelta(microseconds=1), False),
    (START, True),
])
def test_check_out_opens_at_the_start_for_a_member_who_checked_in_early(at, open_):
    assert rules.checkout_open(START, END, START - timedelta(minutes=20), at) is open_


def test_late_means_more_than_ten_minutes_after_the_start():
    assert not rules.is_late(START, START + timedelta(minutes=10))
    assert rules.is_late(START, START + timedelta(minutes=10, seconds=1))


@pytest.mark.parametrize("checked_in,checked_out,hours", [
    (START, START + timedelta(minutes=29, seconds=59), "0"),
    (START, START + timedelta(minutes=30), "0.5"),
    (START, START + timedelta(minutes=89), "1"),
    (START, START + timedelta(minutes=90), "1.5"),
    (START - timedelta(minutes=30), END + timedelta(minutes=20), "2"),  # only the scheduled window counts
    (START + timedelta(minutes=45), END, "1"),
])
def test_hours_are_counted_inside_the_window_and_rounded_down_to_the_half_hour(checked_in, checked_out, hours):
    assert rules.service_hours(START, END, checked_in, checked_out) == Decimal(hours)
