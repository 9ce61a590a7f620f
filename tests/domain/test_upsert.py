"""db.upsert: INSERT … ON CONFLICT DO UPDATE compiled once per shape and executed as cached text."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta

import pytest
import sqlalchemy as sa
from psycopg import pq
from psycopg.adapt import PyFormat

from points_service import db as db_module
from points_service.db import db, upsert, utcnow
from points_service.models import BoardBucket, BoardOrgMembers, BoardScore, SubjectType
from tests.factories import make_world


def add_members(excluded) -> dict:
    return {"members": BoardOrgMembers.members + excluded.members}


def members_of(*org_ids: int) -> list[int]:
    return [db.session.scalar(sa.select(BoardOrgMembers.members).where(BoardOrgMembers.organization_id == org_id))
            for org_id in org_ids]


def test_upserting_inserts_new_rows_and_adds_to_existing_ones(app):
    world = make_world()
    a, b = sorted([world["finance"].id, world["fin1"].id])
    db.session.execute(sa.delete(BoardOrgMembers))  # the world's enrolments counted its members already
    upsert(BoardOrgMembers, [{"organization_id": a, "members": 2}], ("organization_id",), add_members)
    upsert(BoardOrgMembers, [{"organization_id": a, "members": 3}, {"organization_id": b, "members": -1}],
           ("organization_id",), add_members)
    assert members_of(a, b) == [5, -1]


def test_one_shape_is_compiled_once_whatever_the_values(app):
    world = make_world()
    org_id = world["finance"].id
    db.session.execute(sa.delete(BoardOrgMembers))
    db_module._upserts.clear()
    for n in (1, 2, 3):
        upsert(BoardOrgMembers, [{"organization_id": org_id, "members": n}], ("organization_id",), add_members)
    upsert(BoardOrgMembers, [{"organization_id": org_id, "members": 4}, {"organization_id": world["fin1"].id,
                                                                         "members": 1}],
           ("organization_id",), add_members)
    # PostgreSQL sends the rows as one array per column: one text for any number of rows; SQLite one per count
    expected = 1 if db.session.get_bind().dialect.name == "postgresql" else 2
    assert len(db_module._upserts) == expected
    assert members_of(org_id, world["fin1"].id) == [10, 1]


def test_an_updates_function_that_closes_over_a_value_is_refused(app):
    delta = 1
    with pytest.raises(TypeError):
        upsert(BoardOrgMembers, [{"organization_id": 1, "members": 1}], ("organization_id",),
               lambda excluded: {"members": BoardOrgMembers.members + excluded.members + delta})


def test_rows_with_nulls_times_and_points_are_written_as_given(app):
    """The PostgreSQL form carries each column as a typed array: NULLs, UTC instants and exact points survive."""
    world = make_world()
    when = utcnow().replace(microsecond=0)
    rows = [{"board": "test", "subject_type": SubjectType.MEMBER, "subject_id": subject_id, "score": score,
             "reached_at": reached_at, "district_id": None, "street_id": None, "community_id": world["north"].id,
             "grid_id": None, "branch_id": None, "department_id": None, "member_points": 0, "participants": 0}
            for subject_id, score, reached_at in ((1, 250, when), (2, -5, None), (3, 0, when - timedelta(days=1)))]
    upsert(BoardScore, rows, ("board", "subject_type", "subject_id"), _add_score)
    upsert(BoardScore, rows[:1], ("board", "subject_type", "subject_id"), _add_score)
    found = db.session.execute(sa.select(BoardScore.subject_id, BoardScore.score, BoardScore.reached_at,
                                         BoardScore.street_id).where(BoardScore.board == "test")
                               .order_by(BoardScore.subject_id)).all()
    assert [tuple(row) for row in found] == [(1, 500, when, None), (2, -5, None, None),
                                             (3, 0, when - timedelta(days=1), None)]


def _add_score(excluded) -> dict:
    return {"score": BoardScore.score + excluded.score}


def test_text_with_quotes_commas_braces_and_backslashes_is_written_as_given(app):
    """Array elements need quoting in PostgreSQL's text form: sent in binary, they need none and lose nothing."""
    keys = ['a,b', 'say "hi"', "back\\slash", "{braces}", "NULL", " padded "]
    rows = [{"board": "test", "scope_key": key, "bucket": 1, "n": 1} for key in sorted(keys)]
    upsert(BoardBucket, rows, ("board", "scope_key", "bucket"), _add_count)
    found = db.session.scalars(sa.select(BoardBucket.scope_key).where(BoardBucket.board == "test"))
    assert sorted(found) == sorted(keys)


def _add_count(excluded) -> dict:
    return {"n": BoardBucket.n + excluded.n}


@pytest.mark.postgres
def test_the_upserts_arrays_are_sent_in_binary_on_postgresql(app):
    adapters = db.session.connection().connection.driver_connection.adapters
    assert adapters.get_dumper(list, PyFormat.AUTO).format == pq.Format.BINARY


def test_more_rows_than_one_statement_may_carry_are_all_written(app):
    """A roster import writes its summed board changes at once: on SQLite, more parameters than one statement
    takes (SQLite's default 32,766; some builds allow more) go in several, in the rows' order."""
    rows = [{"board": "bulk", "subject_type": SubjectType.MEMBER, "subject_id": subject_id, "score": 1,
             "reached_at": None, "district_id": None, "street_id": None, "community_id": None, "grid_id": None,
             "branch_id": None, "department_id": None, "member_points": 0, "participants": 0}
            for subject_id in range(1, 3001)]  # 39,000 parameters in one VALUES
    with sqlite_default_parameter_limit():
        written = upsert(BoardScore, rows, ("board", "subject_type", "subject_id"), _add_score, ("subject_id",))
    assert [row.subject_id for row in written] == list(range(1, 3001))
    assert db.session.scalar(sa.select(sa.func.sum(BoardScore.score)).where(BoardScore.board == "bulk")) == 3000


@contextlib.contextmanager
def sqlite_default_parameter_limit():
    if db.engine.dialect.name != "sqlite":  # PostgreSQL's upsert sends one array per column
        yield
        return
    connection = db.session.connection().connection.driver_connection
    saved = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    try:
        yield
    finally:
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, saved)
