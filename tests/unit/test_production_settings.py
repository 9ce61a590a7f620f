"""Production's start-up check (config/settings.py: Production.check) refuses keys an attacker could guess."""

from __future__ import annotations

import pytest

from config.settings import UnsafeConfiguration, load_settings
from tests.api.test_auth_wechat import PRODUCTION_ENV


@pytest.fixture
def production_env(monkeypatch):
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("POINTS_WECHAT_DEV_LOGIN", "POINTS_JWT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_separate_token_key_of_32_characters_or_more_signs_the_tokens(production_env):
    production_env.setenv("POINTS_JWT_SECRET_KEY", "j" * 32)
    assert load_settings("production").JWT_SECRET_KEY == "j" * 32


@pytest.mark.parametrize("key", ["secret", "j" * 31])
def test_production_refuses_to_start_with_a_short_separate_token_key(production_env, key):
    production_env.setenv("POINTS_JWT_SECRET_KEY", key)
    with pytest.raises(UnsafeConfiguration, match="POINTS_JWT_SECRET_KEY"):
        load_settings("production")
