"""Publicity windows count working days: weekends skipped, holidays skipped, 调休 weekend days counted."""

from __future__ import annotations

from datetime import date

import pytest

from points_service.domain.calendar import add_working_days, is_working_day


def test_five_working_days_after_a_friday_end_on_the_next_friday():
    assert add_working_days(date(2026, 11, 6), 5, {}) == date(2026, 11, 13)


def test_the_start_day_itself_never_counts_even_on_a_monday():
    assert add_working_days(date(2026, 11, 9), 1, {}) == date(2026, 11, 10)


def test_a_weekday_holiday_is_skipped():
    holidays = {date(2026, 11, 11): False}
    assert add_working_days(date(2026, 11, 9), 3, holidays) == date(2026, 11, 13)


def test_a_tiaoxiu_saturday_counts_as_a_working_day():
    # 国庆: 10-01..10-07 off, Saturday 10-10 worked (调休).
    overrides = {date(2026, 10, day): False for day in range(1, 8)} | {date(2026, 10, 10): True}
    assert add_working_days(date(2026, 9, 30), 3, overrides) == date(2026, 10, 10)
    assert add_working_days(date(2026, 9, 30), 5, overrides) == date(2026, 10, 13)


def test_without_overrides_weekends_are_not_working_days():
    assert not is_working_day(date(2026, 11, 14), {}) and is_working_day(date(2026, 11, 13), {})


def test_zero_working_days_end_on_the_start_day_itself_as_a_policy_without_publicity_days_asks():
    assert add_working_days(date(2026, 11, 7), 0, {}) == date(2026, 11, 7)


@pytest.mark.parametrize("count", [-1, 61])
def test_an_absurd_number_of_working_days_is_refused(count):
    with pytest.raises(ValueError):
        add_working_days(date(2026, 11, 6), count, {})
