"""The Idempotency-Key lease (config/settings.py): 120 seconds by default, set by
``POINTS_IDEMPOTENCY_LEASE_SECONDS``, refused at start-up unless a positive whole number, in every environment
(a lease of 0 or less would let a retry take over a request still running)."""

from __future__ import annotations

import pytest

from config.settings import UnsafeConfiguration, load_settings

NAME = "POINTS_IDEMPOTENCY_LEASE_SECONDS"


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    return monkeypatch


def test_the_default_is_two_minutes():
    assert load_settings("testing").IDEMPOTENCY_LEASE_SECONDS == 120


def test_the_environment_sets_it(unset):
    unset.setenv(NAME, " 600 ")
    assert load_settings("development").IDEMPOTENCY_LEASE_SECONDS == 600


@pytest.mark.parametrize("environment", ["development", "testing"])
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two minutes", ""])
def test_anything_but_a_positive_whole_number_is_refused_at_start_up(unset, environment, value):
    unset.setenv(NAME, value)
    with pytest.raises(UnsafeConfiguration, match=NAME):
        load_settings(environment)
