"""The roster import racing approvals on PostgreSQL: a members file that transfers or deactivates members whose
records a secretary approves at the same moment. Both hold several members' rows (and their board rows) to their
commit; the import takes its members first, sorted by id as a batch approval does, whatever the file's order, so
neither waits on the other in a cycle (a deadlock would answer 503 and keep nothing)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import current_app

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.approvals.decisions import Decision, decide_batch
from points_service.domain.boards.audit import compare_boards
from points_service.domain.errors import ServiceError
from points_service.domain.ledger.credit import award
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.roster.importing import import_roster
from points_service.models import Affiliation, Member, Record, RecordStatus
from tests.concurrency import hammer
from tests.factories import make_member, make_user, make_world
from tests.factories.ledger import install_policy, local, member_fact
from tests.factories.records import self_report
from tests.roster_files import csv_bytes

pytestmark = pytest.mark.postgres
MEMBERS = 8


@pytest.fixture
def world(app):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=None))
    world = make_world()
    phones = [f"1390000{n:04d}" for n in range(MEMBERS)]
    world["movers"] = [make_member(world["fin1"], world["north"], world["north_grid"], phone=phone, name=f"调动{n}")
                       for n, phone in enumerate(phones)]
    world["phones"] = phones
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    for member in world["movers"]:  # board rows to move: each has earned before
        award(member_fact(member), at=local(2026, 11, 2, 10))
    world["records"] = [self_report(make_user(member=member)).id for member in world["movers"]]
    return world


def imported(world, rows: list[list]) -> str:
    actor = principal_for(db.session.get(type(world["users"]["admin"]), world["users"]["admin"].id))
    try:
        report = import_roster(actor, "members", csv_bytes("members", *rows), "members.csv",
                               phone_key=current_app.config["PHONE_HASH_KEY"])
    except ServiceError as error:
        db.session.rollback()
        return error.code
    return f"updated {report.updated}"


def approved(world) -> str:
    secretary = principal_for(db.session.get(type(world["users"]["secretary"]), world["users"]["secretary"].id))
    try:
        decide_batch(secretary, [f"record:{r}" for r in world["records"]], Decision.APPROVE, "属实")
    except ServiceError as error:
        db.session.rollback()
        return error.code
    return "approved"


def test_an_import_transferring_members_in_reverse_order_and_a_batch_approval_of_theirs_never_deadlock(app, world):
    rows = [[f"调动{n}", phone, world["fin2"].name, world["north"].name, world["north_grid"].name]
            for n, phone in reversed(list(enumerate(world["phones"])))]  # the file runs against the ids

    results = hammer(app, [lambda: imported(world, rows), lambda: approved(world)])

    assert results == [f"updated {MEMBERS}", "approved"]
    assert set(db.session.scalars(sa.select(Member.branch_id).where(
        Member.id.in_([m.id for m in world["movers"]])))) == {world["fin2"].id}
    assert set(db.session.scalars(sa.select(Record.status).where(Record.id.in_(world["records"])))) == {
        RecordStatus.APPROVED}
    assert compare_boards() == [] and compare_totals() == []
