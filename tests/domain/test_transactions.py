"""transactions.end_transaction: a transaction that changed nothing ends with COMMIT (psycopg keeps its
prepared statements), any other with ROLLBACK, and nothing pending is ever written by that COMMIT."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import RoutingSession, db, insert_unless_exists, utcnow
from points_service.models import Member, Region, Signup, SignupStatus
from points_service.transactions import driver_cursor, end_transaction
from tests.factories import auth_header, make_member, make_user, make_world
from tests.factories.activities import make_activity, scan_body


@pytest.fixture
def endings(app):
    """How the next transactions end: "commit" or "rollback", in order."""
    seen: list[str] = []
    listeners = {"commit": lambda _conn: seen.append("commit"), "rollback": lambda _conn: seen.append("rollback")}
    for name, listener in listeners.items():
        sa.event.listen(db.engine, name, listener)
    yield seen
    for name, listener in listeners.items():
        sa.event.remove(db.engine, name, listener)


@pytest.fixture
def alice(app):
    world = make_world()
    db.session.commit()
    return world["alice"]


def alice_community(alice: Member) -> Region:
    return db.session.get(Region, alice.community_id)


def name_of(member_id: int) -> str:
    return db.session.scalar(sa.select(Member.name).where(Member.id == member_id))


def test_a_transaction_that_only_read_ends_with_commit(alice, endings):
    name_of(alice.id)
    end_transaction(db.session())
    assert endings == ["commit"]


def test_a_transaction_that_changed_a_row_is_rolled_back(alice, endings):
    db.session.execute(sa.update(Member).where(Member.id == alice.id).values(name="改过的名字"))
    name_of(alice.id)  # a later read does not make it read-only again
    end_transaction(db.session())
    assert endings == ["rollback"]
    assert name_of(alice.id) == "张晓丽"


def test_a_write_that_touched_no_row_leaves_the_transaction_unchanged_on_postgresql(alice, endings):
    db.session.execute(sa.update(Member).where(Member.id == -1).values(name="无人"))
    end_transaction(db.session())
    assert endings == ["commit" if db.engine.dialect.name == "postgresql" else "rollback"]  # see the next test


@pytest.mark.parametrize("pending", ["changed", "added", "deleted"])
def test_objects_pending_in_the_session_roll_it_back_unwritten(alice, endings, pending):
    member = db.session.get(Member, alice.id)
    if pending == "changed":
        member.name = "未保存的名字"
    elif pending == "added":
        db.session.add(Member(name="未保存的新人", phone_hash="x" * 64, phone_masked="139****0000",
                              branch_id=alice.branch_id, community_id=alice.community_id))
    else:
        db.session.delete(member)
    db.session.autoflush = False  # as between a change and the flush that would write it
    try:
        end_transaction(db.session())
    finally:
        db.session.autoflush = True
    assert endings == ["rollback"]
    assert name_of(alice.id) == "张晓丽"
    assert db.session.scalar(sa.select(sa.func.count()).where(Member.name == "未保存的新人")) == 0


def test_loaded_objects_stay_in_the_session_after_the_commit(alice, endings):
    member = db.session.get(Member, alice.id)
    end_transaction(db.session())
    assert endings == ["commit"]
    assert member.name == "张晓丽"  # expired and reloaded, as after a rollback


def test_a_row_written_with_returning_is_a_change(alice, endings):
    """``insert_unless_exists`` (INSERT … RETURNING, as a check-in is written): sqlite3 counts its row only
    when it is fetched, so on SQLite no row count is trusted."""
    written = insert_unless_exists(Signup, {"activity_id": make_activity(alice_community(alice)).id,
                                            "member_id": alice.id, "status": SignupStatus.SIGNED_UP,
                                            "created_at": utcnow()},
                                   ("activity_id", "member_id"))
    assert written is not None
    end_transaction(db.session())
    assert endings[-1] == "rollback"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Signup)) == 0


def test_a_statement_sent_through_the_drivers_cursor_is_a_change(alice, endings):
    """COPY goes through the driver's own cursor, which no engine event sees: ``driver_cursor`` marks the
    transaction changed (shown with a plain INSERT, which both drivers take)."""
    cursor = driver_cursor(db.session.connection())
    cursor.execute("INSERT INTO members (name, phone_hash, phone_masked, branch_id, community_id, show_on_boards, "
                   f"is_active, created_at) VALUES ('复制的人', 'yyyy', '139****0001', {alice.branch_id}, "
                   f"{alice.community_id}, true, true, CURRENT_TIMESTAMP)")
    cursor.close()
    end_transaction(db.session())
    assert endings == ["rollback"]
    assert db.session.scalar(sa.select(sa.func.count()).where(Member.name == "复制的人")) == 0


@pytest.mark.postgres  # SQLite's in-memory test database would go with its connection
def test_a_broken_connection_is_rolled_back_without_an_error(alice):
    name_of(alice.id)
    db.session.connection().invalidate()  # as after the server went away mid-request
    end_transaction(db.session())
    assert name_of(alice.id) == "张晓丽"  # the session works again, on a new connection


def test_a_failed_statement_rolls_the_transaction_back(alice, endings):
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.text("SELECT no_such_column FROM members"))
    end_transaction(db.session())
    assert endings == ["rollback"]


def test_a_session_without_a_transaction_has_nothing_to_end(app, endings):
    db.session.commit()
    end_transaction(db.session())
    assert endings == []


@pytest.mark.postgres
def test_requests_that_change_nothing_keep_the_workers_prepared_statements(app):
    """Requests as a worker serves them (each in its own app context, ended by the teardown), one after
    another on one idle connection: after a repeated scan (409), a refused one (422), a read and a keyed retry,
    the statements the check-ins prepared are still prepared on that connection."""
    world = make_world()
    activity = make_activity(world["north"], utcnow() + timedelta(minutes=20))
    db.session.commit()
    organizer = auth_header(world["users"]["community_admin"])
    users = [make_user(member=make_member(world["fin1"], world["north"], None, name=f"党员{n}")) for n in range(7)]
    db.session.commit()
    members = [auth_header(user) for user in users]
    url = f"/api/v1/activities/{activity.id}/checkins"
    db.session.remove()  # the fixture's session gives its connection back: the requests share one

    def serve():
        client = app.test_client()
        body = scan_body(client.get(f"{url.removesuffix('/checkins')}/checkin-code", headers=organizer)
                         .get_json()["data"]["token"])
        statuses = [client.post(url, json=body, headers=headers).status_code for headers in members[:6]]
        statuses.append(client.post(url, json=body, headers=members[0]).status_code)
        statuses.append(client.post(url, json={**body, "token": "0" * len(body["token"])},
                                    headers=members[1]).status_code)
        statuses.append(client.get(url.removesuffix("/checkins"), headers=members[2]).status_code)
        replayed = {**members[6], "Idempotency-Key": "retry-0001"}  # the second answer is the first's, replayed
        statuses += [client.post(url, json=body, headers=replayed).status_code for _ in range(2)]
        with app.app_context():
            prepared = db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements")).all()
            db.session.rollback()
        return statuses, prepared

    with ThreadPoolExecutor(max_workers=1) as pool:
        statuses, prepared = pool.submit(serve).result()
    assert statuses == [201] * 6 + [409, 422, 200, 201, 201]
    assert any("FROM users" in statement for statement in prepared), prepared  # the principal's


def test_a_commit_that_fails_at_the_end_of_a_request_leaves_its_answer_alone(app, monkeypatch):
    """The teardown's COMMIT ends a transaction that changed nothing: if the connection breaks then, the
    answer already made stands (nothing was to be kept) and the session is removed as usual."""
    world = make_world()
    activity = make_activity(world["north"], utcnow() + timedelta(minutes=20))
    db.session.commit()
    alice, url = auth_header(world["users"]["alice"]), f"/api/v1/activities/{activity.id}"
    db.session.remove()  # the request's own session takes the connection (SQLite's is shared)

    def broken_commit(_session):
        raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    def read():
        monkeypatch.setattr(RoutingSession, "commit", broken_commit)
        try:
            return app.test_client().get(url, headers=alice).status_code
        finally:
            monkeypatch.undo()

    with ThreadPoolExecutor(max_workers=1) as pool:  # its own app context: the teardown runs
        assert pool.submit(read).result() == 200
