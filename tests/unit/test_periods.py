"""Periods are half-open and computed in Asia/Shanghai, whatever UTC says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from points_service.domain.periods import (
    LOCAL_TZ,
    BadPeriod,
    PeriodKind,
    parse_period,
    period_containing,
    period_keys_for,
    to_rfc3339,
)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def test_early_morning_of_april_first_in_shanghai_is_q2_although_utc_still_says_march():
    instant = local(2026, 4, 1, 7, 0)
    assert instant.astimezone(UTC).month == 3
    assert period_containing(instant, PeriodKind.QUARTER).key == "2026-Q2"
    assert period_containing(instant, PeriodKind.MONTH).key == "2026-04"


def test_new_years_eve_late_evening_is_still_the_old_year():
    instant = local(2026, 12, 31, 23, 30)
    assert period_containing(instant, PeriodKind.YEAR).key == "2026"
    assert period_keys_for(instant) == ["2026", "2026-H2", "2026-Q4", "2026-12"]


def test_periods_are_half_open_at_local_midnight():
    q3 = parse_period("2026-Q3")
    assert q3.contains(local(2026, 7, 1, 0, 0))
    assert not q3.contains(local(2026, 10, 1, 0, 0))
    assert q3.contains(local(2026, 10, 1) - timedelta(microseconds=1))
    assert q3.start == local(2026, 7, 1) and q3.end == local(2026, 10, 1)


@pytest.mark.parametrize("key,kind,start,end", [
    ("2026", PeriodKind.YEAR, (2026, 1, 1), (2027, 1, 1)),
    ("2026-H2", PeriodKind.HALF, (2026, 7, 1), (2027, 1, 1)),
    ("2026-H1", PeriodKind.HALF, (2026, 1, 1), (2026, 7, 1)),
    ("2026-Q4", PeriodKind.QUARTER, (2026, 10, 1), (2027, 1, 1)),
    ("2026-02", PeriodKind.MONTH, (2026, 2, 1), (2026, 3, 1)),
    ("2026-12", PeriodKind.MONTH, (2026, 12, 1), (2027, 1, 1)),
    ("2026-11-21", PeriodKind.DAY, (2026, 11, 21), (2026, 11, 22)),
])
def test_keys_parse_to_their_local_bounds_and_back(key, kind, start, end):
    period = parse_period(key)
    assert (period.kind, period.start, period.end) == (kind, local(*start), local(*end))
    assert period.key == key


@pytest.mark.parametrize("key", ["2026-12", "2026-Q4", "2026-H2", "2026", "2026-12-31"])
def test_a_periods_last_instant_is_inside_it_and_the_next_tick_is_the_next_period(key):
    period = parse_period(key)
    assert period.contains(period.last_instant) and period.last_instant.astimezone(LOCAL_TZ).date() == \
        period.end_date - timedelta(days=1)
    assert period_containing(period.last_instant + timedelta(microseconds=1), period.kind) == period.next()


@pytest.mark.parametrize("key", ["", "2026-Q5", "2026-H3", "2026-13", "26", "2026-02-30", "1999", "2026Q1", "２０２６"])
def test_malformed_period_keys_are_refused(key):
    with pytest.raises(BadPeriod):
        parse_period(key)


def test_previous_and_next_step_across_year_boundaries():
    assert parse_period("2026-01").previous().key == "2025-12"
    assert parse_period("2026-Q1").previous().key == "2025-Q4"
    assert parse_period("2026-H2").next().key == "2027-H1"


def test_naive_datetimes_are_refused_because_they_are_ambiguous():
    with pytest.raises(ValueError):
        period_containing(datetime(2026, 4, 1), PeriodKind.MONTH)


def test_instants_are_emitted_in_rfc3339_with_the_local_offset():
    assert to_rfc3339(datetime(2026, 11, 1, 1, 30, tzinfo=UTC)) == "2026-11-01T09:30:00+08:00"
