"""Which statements may have changed the database (transactions._may_have_changed): only a plain SELECT and a
row write that touched no row leave a transaction unchanged; anything else, or anything unrecognised, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from points_service.transactions import _may_have_changed


@pytest.mark.parametrize("statement, rowcount", [
    ("SELECT users.id FROM users WHERE users.id = %(user_id)s", 1),
    ("\n  select 1", 1),
    ("INSERT INTO checkins (activity_id) VALUES (1) ON CONFLICT DO NOTHING RETURNING checkins.id", 0),
    ("UPDATE checkins SET status = 'checked_out' WHERE id = 1 AND status = 'checked_in'", 0),
    ("DELETE FROM idempotency_records WHERE id = 7", 0),
])
def test_reads_and_writes_that_touched_no_row_leave_the_transaction_unchanged(statement, rowcount):
    assert not _may_have_changed(statement, rowcount)


@pytest.mark.parametrize("statement, rowcount", [
    ("INSERT INTO checkins (activity_id) VALUES (1) RETURNING checkins.id", 1),
    ("UPDATE members SET name = 'x' WHERE id = 1", 1),
    ("DELETE FROM signups WHERE id = 1", -1),  # unknown row count
    ("WITH gone AS (DELETE FROM signups RETURNING id) SELECT count(*) FROM gone", 0),
    ("SAVEPOINT sa_savepoint_1", -1),
    ("BEGIN IMMEDIATE", -1),
    ("(SELECT 1) UNION (SELECT 2)", 2),  # not recognised: counted, to be safe
    ("", -1),
])
def test_anything_else_counts_as_a_change(statement, rowcount):
    assert _may_have_changed(statement, rowcount)


def test_only_driver_cursor_reaches_the_drivers_own_cursor():
    """Statements sent past SQLAlchemy (COPY) pass no engine event: they must go through
    ``transactions.driver_cursor``, which counts the transaction as changed."""
    package = Path(__file__).resolve().parents[2] / "points_service"
    reaching = [path.relative_to(package).as_posix() for path in package.rglob("*.py")
                if "driver_connection" in path.read_text(encoding="utf-8")]
    assert reaching == ["transactions.py"]
