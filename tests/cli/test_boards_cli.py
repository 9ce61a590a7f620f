"""``flask boards rebuild``: reports no difference, finds a tampered histogram row, fixes it."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from tests.factories import make_world
from tests.factories.boards import entry


def test_boards_rebuild_finds_and_fixes_a_tampered_row(app):
    world = make_world()
    entry(world["alice"], 4)
    entry(world["bob"], 2)
    db.session.commit()
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["boards", "rebuild"])
    assert clean.exit_code == 0 and "0 difference(s)" in clean.output
    db.session.execute(sa.text("UPDATE board_fine SET n = n + 5 WHERE scope_key = 'city'"))
    db.session.commit()
    dirty = runner.invoke(args=["boards", "rebuild"])
    assert dirty.exit_code == 1 and "board_fine" in dirty.output
    assert runner.invoke(args=["boards", "rebuild", "--fix"]).exit_code == 0
    assert runner.invoke(args=["boards", "rebuild"]).exit_code == 0
    forced = runner.invoke(args=["boards", "rebuild", "--force"])
    assert forced.exit_code == 0 and "rebuilt" in forced.output
