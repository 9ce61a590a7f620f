"""The retention periods of the ``retention`` job (config/settings.py): 30 and 90 days by default, set by
``POINTS_IDEMPOTENCY_RETENTION_DAYS`` and ``POINTS_DELIVERY_RETENTION_DAYS``, refused unless a positive whole
number, in every environment."""

from __future__ import annotations

import pytest

from config.settings import UnsafeConfiguration, load_settings

NAMES = ("POINTS_IDEMPOTENCY_RETENTION_DAYS", "POINTS_DELIVERY_RETENTION_DAYS")


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_defaults_are_a_month_of_keys_and_three_months_of_deliveries():
    settings = load_settings("testing")
    assert (settings.IDEMPOTENCY_RETENTION_DAYS, settings.DELIVERY_RETENTION_DAYS) == (30, 90)
    assert settings.as_dict()["RETENTION_BATCH_ROWS"] == 5000


def test_the_environment_sets_them(unset):
    unset.setenv("POINTS_IDEMPOTENCY_RETENTION_DAYS", "7")
    unset.setenv("POINTS_DELIVERY_RETENTION_DAYS", " 365 ")
    settings = load_settings("development")
    assert (settings.IDEMPOTENCY_RETENTION_DAYS, settings.DELIVERY_RETENTION_DAYS) == (7, 365)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "thirty", ""])
def test_anything_but_a_positive_whole_number_is_refused_at_start_up(unset, name, value):
    unset.setenv(name, value)
    with pytest.raises(UnsafeConfiguration, match=name):
        load_settings("testing")
