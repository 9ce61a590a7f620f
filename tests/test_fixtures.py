"""The shared application fixture: one app per test process, but nothing a test does reaches the next."""

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.models import Region
from tests.factories import make_world

# Both on one worker, in this order, when the suite runs in parallel (pytest-xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("shared-app")


def test_a_test_may_write_rows_and_change_config(app):
    make_world()
    db.session.commit()
    app.config["MAX_CONTENT_LENGTH"] = 7
    app.config["SQLALCHEMY_ENGINE_OPTIONS"]["marker"] = "changed"
    app.instance_path = "/nonexistent"
    assert db.session.query(Region).count() > 0


def test_the_next_test_starts_with_an_empty_database_and_the_original_config(app):
    assert db.session.query(Region).count() == 0
    assert app.config["MAX_CONTENT_LENGTH"] != 7
    assert "marker" not in app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    assert app.instance_path != "/nonexistent"
