"""On PostgreSQL, every statement of the retention job's purges (``db.purge_in_batches``: each batch's search, its
DELETE, and the last search that finds nothing) reaches its rows by index, not by walking the rest of the table:
the plans of the statements the purges really ran, with their parameters, on tables whose old rows are a few."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.idempotency import purge_idempotency_keys
from points_service.domain.notifications.retention import purge_deliveries
from tests.factories import make_user, make_world

pytestmark = pytest.mark.postgres
ROWS, DAY = 20_000, timedelta(days=1)


def ran_statements(purge) -> list[tuple[str, dict]]:
    """The statements ``purge`` ran, with their parameters."""
    seen: list[tuple[str, dict]] = []

    def record(_conn, _cursor, statement, parameters, *_args):
        if statement.lstrip().upper().startswith(("SELECT", "DELETE")):
            seen.append((statement, parameters))
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        purge()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return seen


def plans(seen: list[tuple[str, dict]]) -> list[str]:
    with db.engine.connect() as connection:
        return ["\n".join(connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
                for statement, parameters in seen]


def assert_by_index(seen: list[tuple[str, dict]], index: str) -> None:
    searches, deletes = [s for s in seen if s[0].lstrip().startswith("SELECT")], [s for s in seen if "DELETE" in s[0]]
    assert len(searches) == len(deletes) + 1 >= 3  # several batches, then the search that finds nothing
    for plan in plans(searches):
        assert index in plan and "Seq Scan" not in plan, plan
    for plan in plans(deletes):  # the batch's id range on the primary key, or its rows by the same index
        assert "Index Scan using" in plan and "Seq Scan" not in plan, plan


def analyzed(table: str) -> None:
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM ANALYZE {table}")


def test_the_key_purge_searches_by_age(app):
    user = make_user(username="keyholder")
    db.session.flush()
    now = utcnow().replace(tzinfo=None)
    # ids rise with time, as in production: 31 days of keys, the oldest day's due for deletion
    db.session.execute(sa.text("""
        INSERT INTO idempotency_keys (user_id, key, fingerprint, state, response_status, response_body, created_at)
        SELECT :user, 'k-' || g, 'f', CASE WHEN g % 500 = 0 THEN 'in_flight' ELSE 'completed' END, 201, '{}',
               :now - interval '31 days' + interval '31 days' * (g::float8 / :n)
        FROM generate_series(1, :n) g"""), {"user": user.id, "now": now, "n": ROWS})
    analyzed("idempotency_keys")
    seen = ran_statements(lambda: purge_idempotency_keys(utcnow() - 30 * DAY, batch_size=200))
    assert_by_index(seen, "ix_idempotency_keys_created_at")


def test_the_delivery_purge_searches_by_outcome_time(app):
    alice = make_world()["alice"]
    now = utcnow().replace(tzinfo=None)
    db.session.execute(sa.text("""
        INSERT INTO notification_messages (member_id, event, source_key, title, body, link, created_at)
        SELECT :member, 'record_approved', 'm-' || g, 't', 'b', '', :now - interval '91 days' * (1 - g::float8 / :n)
        FROM generate_series(1, :n) g"""), {"member": alice.id, "now": now, "n": ROWS})
    db.session.execute(sa.text("""
        INSERT INTO notification_deliveries (message_id, member_id, template_key, data, page, state, attempts,
            next_attempt_at, duplicate_possible, last_error, created_at, updated_at)
        SELECT id, member_id, 'k', '{}', '', CASE WHEN id % 500 = 0 THEN 'pending' ELSE 'sent' END, 1, created_at,
               false, '', created_at, created_at
        FROM notification_messages"""))
    analyzed("notification_deliveries")
    seen = ran_statements(lambda: purge_deliveries(utcnow() - 90 * DAY, batch_size=50))
    assert_by_index(seen, "ix_notification_deliveries_updated_at")
