"""The refresh retry grace (config/settings.py): 30 seconds by default, set by
``POINTS_REFRESH_REUSE_GRACE_SECONDS``, 0 turns it off; refused at start-up unless a whole number from 0 to 300 in
every environment (a long grace would let a stolen refresh token be replayed for that long unnoticed)."""

from __future__ import annotations

import pytest

from config.settings import UnsafeConfiguration, load_settings

NAME = "POINTS_REFRESH_REUSE_GRACE_SECONDS"


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    return monkeypatch


def test_the_default_is_thirty_seconds():
    assert load_settings("testing").REFRESH_REUSE_GRACE_SECONDS == 30


@pytest.mark.parametrize(("value", "seconds"), [(" 10 ", 10), ("0", 0), ("300", 300)])
def test_the_environment_sets_it_and_zero_turns_it_off(unset, value, seconds):
    unset.setenv(NAME, value)
    assert seconds == load_settings("development").REFRESH_REUSE_GRACE_SECONDS


@pytest.mark.parametrize("environment", ["development", "testing"])
@pytest.mark.parametrize("value", ["-1", "301", "1.5", "thirty", ""])
def test_anything_but_a_whole_number_up_to_five_minutes_is_refused_at_start_up(unset, environment, value):
    unset.setenv(NAME, value)
    with pytest.raises(UnsafeConfiguration, match=NAME):
        load_settings(environment)
