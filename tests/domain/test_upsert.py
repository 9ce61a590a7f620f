"""db.upsert: INSERT … ON CONFLICT DO UPDATE compiled once per shape and executed as cached text."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service import db as db_module
from points_service.db import db, upsert
from points_service.models import BoardOrgMembers
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
    assert len(db_module._upserts) == 2  # one row, two rows
    assert members_of(org_id, world["fin1"].id) == [10, 1]


def test_an_updates_function_that_closes_over_a_value_is_refused(app):
    delta = 1
    with pytest.raises(TypeError):
        upsert(BoardOrgMembers, [{"organization_id": 1, "members": 1}], ("organization_id",),
               lambda excluded: {"members": BoardOrgMembers.members + excluded.members + delta})
