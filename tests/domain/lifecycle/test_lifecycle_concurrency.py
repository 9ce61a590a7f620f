"""Concurrency on PostgreSQL: a member's deactivation or transfer racing credits to him and to his branch.

The member's row lock orders a deactivation or transfer against his credits: each credit lands wholly before it
(and is moved off or along with his boards) or after it (refused, or placed where he now is). Shared rows (the
branch's rollups, the histograms) are taken in one order by every writer, so nothing deadlocks.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import cents, db, from_cents, utcnow
from points_service.domain.access import principal_for
from points_service.domain.activities.signups import sign_up
from points_service.domain.approvals.decisions import Decision, decide, decide_batch
from points_service.domain.approvals.records import submit_member_record
from points_service.domain.boards.audit import compare_boards
from points_service.domain.errors import ServiceError
from points_service.domain.ledger.credit import MemberInactive, award
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.lifecycle.due import apply_due_changes
from points_service.domain.lifecycle.status import deactivate_member, local_today
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.market.orders import OrderRequest, place_order
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.reports.reporting import confirm_report, submit_member_report
from points_service.models import (
    Affiliation,
    BoardScore,
    DeactivationReason,
    LedgerEntry,
    LedgerName,
    MarketItem,
    MarketOrder,
    OrderState,
    Record,
    RecordStatus,
    Report,
    ReportStatus,
    Signup,
    SignupStatus,
    SubjectType,
)
from tests.concurrency import hammer
from tests.factories import make_member, make_user, make_world
from tests.factories.activities import make_activity
from tests.factories.ledger import install_policy, local, member_fact
from tests.factories.market import fund, make_item
from tests.factories.records import self_report
from tests.factories.records import submission as record_submission

pytestmark = pytest.mark.postgres
NOV = local(2026, 11, 10, 10)


@pytest.fixture
def world(app):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=None))
    world = make_world()
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def credited_or_refused(fact, at) -> str:
    try:
        award(fact, at=at)
    except MemberInactive:
        db.session.rollback()
        return "refused"
    return "credited"


def ordered_or_refused(buyer, item_id: int, key: str) -> str:
    try:
        place_order(buyer, OrderRequest(item_id, request_key=key))
    except ServiceError:
        db.session.rollback()
        return "refused"
    return "ordered"


def total_balance(member) -> Decimal:
    return from_cents(db.session.scalar(sa.select(sa.func.sum(cents(LedgerEntry.points))).where(
        LedgerEntry.subject_id == member.id, LedgerEntry.subject_type == SubjectType.MEMBER,
        LedgerEntry.ledger == LedgerName.REDEEMABLE)))


def entries_of(member) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.subject_type == SubjectType.MEMBER, LedgerEntry.subject_id == member.id))


def test_credits_racing_his_deactivation_land_before_it_or_are_refused_and_the_boards_equal_a_rebuild(app, world):
    alice, admin = world["alice"], world["admin"]
    award(member_fact(alice, "member.commend_city", source_id="before"), at=NOV)
    per_credit = entries_of(alice)  # one entry per ledger the item feeds
    facts = [member_fact(alice, "member.commend_city", source_id=f"c{n}") for n in range(30)]
    calls = [lambda f=f: credited_or_refused(f, NOV) for f in facts]
    calls.insert(15, lambda: deactivate_member(admin, alice.id, DeactivationReason.RESIGNED, "离职",
                                               local_today(utcnow())) and "deactivated")
    results = hammer(app, calls, workers=31)
    assert results.count("deactivated") == 1
    assert results.count("credited") + results.count("refused") == 30
    assert entries_of(alice) == (1 + results.count("credited")) * per_credit
    # He left the boards of periods ending after today (the quarter, half, year, standing); November stays.
    assert set(db.session.scalars(sa.select(BoardScore.board).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == alice.id))) <= {"assessment:2026-11"}
    assert compare_boards() == [] and compare_totals() == []


def test_his_deactivation_racing_first_credits_of_his_branch_keeps_its_rollups_equal_to_a_rebuild(app, world):
    """The deactivation takes his board rows off the branch's rollups and head count while twenty colleagues'
    first credits add to the same rollup rows and histograms."""
    alice, admin = world["alice"], world["admin"]
    award(member_fact(alice, "member.commend_city", source_id="before"), at=NOV)
    colleagues = [make_member(world["fin1"], world["north"], world["north_grid"]) for _ in range(20)]
    db.session.commit()
    facts = [member_fact(member, "member.commend_city", source_id=f"c{member.id}") for member in colleagues]
    calls = [lambda f=f: credited_or_refused(f, NOV) for f in facts]
    calls.insert(10, lambda: deactivate_member(admin, alice.id, DeactivationReason.RETIRED, "到龄退休",
                                               date(2026, 12, 1)) and "deactivated")
    results = hammer(app, calls, workers=21)
    assert results.count("deactivated") == 1 and results.count("credited") == 20
    assert compare_boards() == [] and compare_totals() == []


def test_credits_racing_his_transfer_end_on_the_boards_of_his_new_branch(app, world):
    alice, admin = world["alice"], world["admin"]
    now = utcnow()
    facts = [member_fact(alice, "member.commend_city", source_id=f"c{n}", occurred_at=now) for n in range(30)]
    calls = [lambda f=f: credited_or_refused(f, now) for f in facts]
    calls.insert(15, lambda: transfer(admin, alice.id, branch_id=world["fin2"].id, community_id=world["south"].id,
                                      grid_id=world["south_grid"].id) and "transferred")
    results = hammer(app, calls, workers=31)
    assert results.count("transferred") == 1 and results.count("credited") == 30
    open_rows = db.session.scalars(sa.select(BoardScore.branch_id).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == alice.id)).all()
    assert open_rows and set(open_rows) == {world["fin2"].id}
    assert compare_boards() == [] and compare_totals() == []


def test_orders_racing_his_deactivation_are_cancelled_and_refunded_by_it_or_refused_after_it(app, world):
    alice, admin = world["alice"], world["admin"]
    item = make_item(world["north"], price=Decimal(10), stock=20)
    db.session.commit()
    fund(alice, 100)
    buyer = principal_for(world["users"]["alice"])  # his token was checked before the race, as the API does
    calls = [lambda n=n: ordered_or_refused(buyer, item.id, f"k{n}") for n in range(10)]
    calls.insert(5, lambda: deactivate_member(admin, alice.id, DeactivationReason.RESIGNED, "离职",
                                              local_today(utcnow())) and "deactivated")
    results = hammer(app, calls, workers=11)
    assert results.count("deactivated") == 1 and results.count("ordered") + results.count("refused") == 10
    orders = db.session.scalars(sa.select(MarketOrder).where(MarketOrder.member_id == alice.id)).all()
    assert len(orders) == results.count("ordered") and {o.state for o in orders} <= {OrderState.CANCELLED}
    db.session.expire_all()
    assert (db.session.get(MarketItem, item.id).stock, db.session.get(MarketItem, item.id).sold) == (20, 0)
    assert total_balance(alice) == Decimal(100)
    assert compare_totals() == []


def decided_or_refused(secretary, record_id: int) -> str:
    try:
        decide(secretary, f"record:{record_id}", Decision.APPROVE, "属实")
    except ServiceError as error:  # closed by the deactivation, or he is inactive by the time it credits
        db.session.rollback()
        return error.code
    return "approved"


def test_approvals_racing_his_deactivation_are_credited_before_it_or_refused_after_it(app, world):
    alice, admin = world["alice"], world["admin"]
    pending = [self_report(world["users"]["alice"], occurred_at=local(2026, 11, day, 9)).id for day in range(1, 10)]
    secretary = principal_for(world["users"]["secretary"])
    calls = [lambda r=r: decided_or_refused(secretary, r) for r in pending]
    calls.insert(5, lambda: deactivate_member(admin, alice.id, DeactivationReason.RESIGNED, "离职",
                                              local_today(utcnow())) and "deactivated")
    results = hammer(app, calls, workers=11)
    assert results.count("deactivated") == 1
    assert set(results) <= {"deactivated", "approved", "invalid_transition", "member_inactive"}, results
    db.session.expire_all()
    statuses = [db.session.get(Record, r).status for r in pending]
    assert statuses.count(RecordStatus.APPROVED) == results.count("approved")
    assert set(statuses) <= {RecordStatus.APPROVED, RecordStatus.REJECTED}
    assert compare_boards() == [] and compare_totals() == []


def confirmed_or_refused(admin, report_id: int) -> str:
    try:
        confirm_report(admin, report_id)
    except ServiceError as error:  # closed by his deactivation, or he is inactive by the time it credits
        db.session.rollback()
        return error.code
    return "confirmed"


def test_report_confirmations_racing_their_members_deactivations_never_deadlock(app, world):
    members = [make_member(world["fin1"], world["north"], world["north_grid"]) for _ in range(8)]
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    reports = [submit_member_report(principal_for(make_user(member=member)), world["north"].id).id
               for member in members]
    db.session.commit()
    community_admin, admin = principal_for(world["users"]["community_admin"]), world["admin"]
    calls = []
    for member, report_id in zip(members, reports, strict=True):
        calls += [lambda r=report_id: confirmed_or_refused(community_admin, r),
                  lambda m=member: deactivate_member(admin, m.id, DeactivationReason.RETIRED, "到龄退休",
                                                     local_today(utcnow())) and "deactivated"]
    results = hammer(app, calls, workers=16)
    assert results.count("deactivated") == 8
    assert set(results) <= {"deactivated", "confirmed", "invalid_transition", "member_inactive"}, results
    assert compare_boards() == [] and compare_totals() == []


def test_deactivations_of_members_whose_open_orders_share_items_never_deadlock(app, world):
    """Each deactivation refunds its member's open orders, releasing their items' stock (a row lock per item):
    by item, so two members who ordered the same two items in opposite orders are closed without a deadlock."""
    first, second = (make_item(world["north"], price=Decimal(1), stock=100) for _ in range(2))
    # Two branches of two departments: their head counts are not shared, so only the items' rows are.
    members = [make_member(world["fin1"] if n % 2 else world["edu1"], world["north"], None) for n in range(12)]
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    for n, member in enumerate(members):
        fund(member, 10)
        buyer = principal_for(make_user(member=member))
        for item in (first, second) if n % 2 else (second, first):
            place_order(buyer, OrderRequest(item.id, request_key=f"{member.id}-{item.id}"))
    admin, ids = world["admin"], [member.id for member in members]
    results = hammer(app, [lambda m=m: deactivate_member(admin, m, DeactivationReason.RESIGNED, "离职",
                                                         local_today(utcnow())) and "deactivated" for m in ids])
    assert results == ["deactivated"] * 12
    db.session.expire_all()
    assert {db.session.get(MarketItem, item.id).stock for item in (first, second)} == {100}
    assert compare_totals() == []


def submitted_or_refused(submit) -> str:
    try:
        submit()
    except ServiceError as error:
        db.session.rollback()
        return error.code
    return "submitted"


def test_submissions_racing_his_deactivation_are_closed_by_it_or_refused_after_it(app, world):
    """His self-reports, his 报到 and his sign-ups credit nothing, yet each takes his row (shared) while it
    writes: one written before his deactivation is closed by it, one that waited for it is refused. None is left
    waiting for a member who is gone."""
    alice, admin = world["alice"], world["admin"]
    activities = [make_activity(world["north"], utcnow() + timedelta(days=1)).id for _ in range(4)]
    db.session.commit()
    member = principal_for(world["users"]["alice"])  # his token was checked before the race, as the API does
    submissions = [lambda d=d: submit_member_record(member, record_submission(occurred_at=NOV - timedelta(days=d)),
                                                    now=NOV) for d in range(1, 9)]
    submissions.append(lambda: submit_member_report(member, world["north"].id))
    submissions += [lambda a=a: sign_up(member, a) for a in activities]
    # Staggered over the deactivation's few tens of milliseconds: some come before it, some while it holds him.
    calls = [lambda n=n, s=s: time.sleep(n * 0.008) or submitted_or_refused(s) for n, s in enumerate(submissions)]
    calls.insert(6, lambda: deactivate_member(admin, alice.id, DeactivationReason.RESIGNED, "离职",
                                              local_today(utcnow())) and "deactivated")
    results = hammer(app, calls, workers=len(calls))
    assert results.count("deactivated") == 1 and set(results) <= {"deactivated", "submitted", "member_inactive"}
    of_alice = {"subject_type": SubjectType.MEMBER, "subject_id": alice.id}
    assert db.session.scalars(sa.select(Record.status).filter_by(**of_alice)).all().count(RecordStatus.PENDING) == 0
    assert ReportStatus.PENDING not in db.session.scalars(sa.select(Report.status).filter_by(**of_alice)).all()
    signups = db.session.scalars(sa.select(Signup.status).filter_by(member_id=alice.id)).all()
    assert SignupStatus.SIGNED_UP not in signups


def batch_approved_or_refused(secretary, record_ids: list[int]) -> str:
    try:
        decide_batch(secretary, [f"record:{r}" for r in record_ids], Decision.APPROVE, "属实")
    except ServiceError as error:  # a member deactivated first: the batch is all or nothing
        db.session.rollback()
        return error.code
    return "approved"


def changes_applied(on: date) -> str:
    moment = local(on.year, on.month, on.day, 0, 5)
    result = apply_due_changes(period_containing(moment, PeriodKind.DAY).previous(), now=moment)
    db.session.commit()
    return f"applied {result['applied']}"


def test_the_member_changes_job_and_a_batch_approval_of_the_same_members_never_deadlock(app, world):
    """Both lock several members and hold them to their commit (the job applies each change in a savepoint of one
    transaction): the job takes them by member id, as a batch approval does, whatever the changes' dates."""
    members = [make_member(world["fin1"], world["north"], world["north_grid"]) for _ in range(6)]
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    records = [self_report(make_user(member=member)).id for member in members]
    admin = world["admin"]
    for n, member in enumerate(members):  # the later the member, the earlier his date
        deactivate_member(admin, member.id, DeactivationReason.RESIGNED, "离职", date(2026, 11, 30 - n),
                          now=local(2026, 11, 20, 10))
    secretary = principal_for(world["users"]["secretary"])
    results = hammer(app, [lambda: changes_applied(date(2026, 12, 1)),
                           lambda: batch_approved_or_refused(secretary, records)])
    assert results[0] == "applied 6" and results[1] in ("approved", "invalid_transition", "member_inactive")
    assert compare_boards() == [] and compare_totals() == []


def imported(admin, content: bytes) -> str:
    from flask import current_app

    from points_service.domain.roster.importing import import_roster
    report = import_roster(admin, "members", content, "members.csv", phone_key=current_app.config["PHONE_HASH_KEY"])
    return f"imported {report.updated}"


def test_a_roster_files_deactivations_and_deactivations_through_the_api_never_deadlock(app, world):
    """Both cancel orders of one 积分超市 item and take one branch's board rows: the file writes those rows,
    summed, at its end, after the item's; a deactivation through the API takes the item first too."""
    from tests.roster_files import csv_bytes

    item = make_item(world["north"], price=Decimal(1), stock=100)
    phones = [f"1391234{n:04d}" for n in range(12)]
    members = [make_member(world["fin1"], world["north"], None, name=f"党员{n}", phone=phone)
               for n, phone in enumerate(phones)]
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    for member in members:
        award(member_fact(member, "member.commend_city", source_id=f"on-boards-{member.id}"), at=NOV)
        fund(member, 10)
        place_order(principal_for(make_user(member=member)), OrderRequest(item.id, request_key=f"{member.id}"))
    header = ["姓名", "手机号", "所在支部", "居住社区", "网格", "状态", "状态生效日期"]
    today = local_today(utcnow()).isoformat()
    content = csv_bytes("members", *[[f"党员{n}", phones[n], world["fin1"].name, world["north"].name, "", "退休", today]
                                     for n in range(6)], header=header)
    admin = world["admin"]
    calls = [lambda m=m.id: deactivate_member(admin, m, DeactivationReason.RESIGNED, "离职", local_today(utcnow()))
             and "deactivated" for m in members[6:]]
    calls.insert(2, lambda: imported(admin, content))
    results = hammer(app, calls, workers=len(calls))
    assert sorted(results) == ["deactivated"] * 6 + ["imported 6"]
    db.session.expire_all()
    assert db.session.get(MarketItem, item.id).stock == 100
    assert compare_boards() == [] and compare_totals() == []


def test_the_member_changes_job_and_orders_by_the_members_it_changes_never_deadlock(app, world):
    """The job cancels each member's open orders as it goes (the item's row, held to its commit), while a member
    it has not reached yet orders the same item (himself locked, then the item): the job locks every member it
    will change before its first change, so it never waits for one while holding an item."""
    item = make_item(world["north"], price=Decimal(1), stock=100)
    members = [make_member(world["fin1"], world["north"], None) for _ in range(12)]
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))
    db.session.commit()
    admin, buyers = world["admin"], []
    for member in members:
        fund(member, 10)
        buyers.append(principal_for(make_user(member=member)))
        place_order(buyers[-1], OrderRequest(item.id, request_key=f"first-{member.id}"))
        deactivate_member(admin, member.id, DeactivationReason.RESIGNED, "离职", date(2026, 11, 30),
                          now=local(2026, 11, 20, 10))
    calls = [lambda: changes_applied(date(2026, 12, 1))]
    # Those the job reaches after a cancel, staggered over the job's few tens of milliseconds.
    calls += [lambda n=n, b=b, m=m.id: time.sleep(n * 0.005) or ordered_or_refused(b, item.id, f"second-{m}")
              for n, (b, m) in enumerate(zip(buyers[2:], members[2:], strict=True))]
    results = hammer(app, calls, workers=len(calls))
    assert results[0] == "applied 12" and set(results[1:]) <= {"ordered", "refused"}, results
    db.session.expire_all()
    assert db.session.get(MarketItem, item.id).stock == 100  # every order cancelled by the job, or refused after it
    assert compare_totals() == []
