"""Crediting points: one entry per fact and ledger, caps recorded, totals in step with the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.errors import NotFound, ValidationFailed
from points_service.domain.ledger import credit as credit_module
from points_service.domain.ledger.corrections import adjust, reverse_entry
from points_service.domain.ledger.credit import (
    Fact,
    MemberInactive,
    award,
    credit,
    insert_entry,
    lock_subject,
    lock_subjects,
)
from points_service.domain.ledger.totals import compare_totals, rebuild_totals, total_of
from points_service.domain.policy import UnknownItem, policy_in_force
from points_service.models import ALL_TIME, EntryKind, LedgerEntry, LedgerName, Member, SourceType, SubjectType
from tests.factories import make_world
from tests.factories.ledger import install_policy, local, member_fact, org_fact

NOV = local(2026, 11, 10, 10)


@pytest.fixture
def world(app):
    return make_world()


def entries_of(member) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.subject_id == member.id,
                                                                LedgerEntry.subject_type == "member")
                                   .order_by(LedgerEntry.id)))


def test_an_award_writes_one_entry_per_ledger_the_item_feeds(world):
    alice, admin = world["alice"], world["users"]["admin"]
    entries = award(member_fact(alice, "member.activity_hour", units=3), actor_id=admin.id, at=NOV)
    assert sorted(e.ledger for e in entries) == [LedgerName.ASSESSMENT, LedgerName.REDEEMABLE]
    for entry in entries:
        assert (entry.points, entry.points_requested, entry.units) == (Decimal("3.00"), Decimal("3.00"), Decimal("3"))
        assert entry.kind == EntryKind.AWARD and entry.policy_version == 1 and entry.actor_id == admin.id
        assert entry.source_type == SourceType.RECORD and entry.credited_at == NOV


def test_a_member_the_session_loaded_before_his_deactivation_is_refused_by_what_the_lock_reads(world):
    alice = world["alice"]
    assert alice.is_active  # loaded in the session before the credit, as a check-out loads its member
    db.session.execute(sa.update(Member).where(Member.id == alice.id).values(is_active=False)
                       .execution_options(synchronize_session=False))  # as another transaction would
    with pytest.raises(MemberInactive):
        award(member_fact(alice, "member.activity_hour"), at=NOV)
    assert entries_of(alice) == []


def test_the_same_fact_credited_twice_yields_one_entry_and_unchanged_totals(world):
    alice = world["alice"]
    fact = member_fact(alice, "member.micro_wish", source_id="wish-1")
    first = award(fact, at=NOV)
    second = award(fact, at=NOV)
    assert [e.id for e in first] == [e.id for e in second]
    assert len(entries_of(alice)) == 2
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(5)


def test_a_first_credit_reads_the_ledger_once_for_its_caps_and_its_written_keys(world, statements):
    alice = world["alice"]
    before = len(statements)
    award(member_fact(alice, "member.activity_hour", units=2), at=NOV)
    ledger_reads = [s for s in statements[before:] if s.lstrip().upper().startswith("SELECT") and
                    "FROM ledger_entries" in " ".join(s.split())]
    assert len(ledger_reads) == 1


def test_hours_beyond_the_per_activity_maximum_are_not_counted(world):
    [entry, _] = award(member_fact(world["alice"], "member.activity_hour", units=6), at=NOV)
    assert entry.units == Decimal(4) and entry.points == Decimal(4)


def test_a_capped_entry_records_what_was_asked_and_what_was_granted(world):
    alice = world["alice"]
    for n in range(2):
        award(member_fact(alice, "member.activity_hour", units=4), at=NOV.replace(hour=9 + n))
    [capped, _] = award(member_fact(alice, "member.activity_hour", units=4), at=NOV.replace(hour=15))
    assert (capped.points_requested, capped.points, capped.capped_by) == (Decimal(4), Decimal(0), "item.day")
    next_day = award(member_fact(alice, "member.activity_hour", units=4), at=NOV.replace(day=11))
    assert next_day[0].points == Decimal(4)


def test_the_monthly_cap_on_positive_points_limits_the_sum_of_all_items(world):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=12))
    alice = world["alice"]
    granted = [award(member_fact(alice, "member.commend_city"), at=NOV.replace(day=d))[0].points for d in (1, 2)]
    assert granted == [Decimal(10), Decimal(2)]
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(12)
    december = award(member_fact(alice, "member.commend_city"), at=local(2026, 12, 1, 9))[0]
    assert december.points == Decimal(10)


def test_the_monthly_cap_holds_for_several_credits_in_one_transaction(world):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=25))
    alice = world["alice"]
    award(member_fact(alice, "member.commend_city", source_id="c-1"), at=NOV.replace(day=1))
    earlier = total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11")  # held by the transaction
    assert earlier.earned == Decimal(10)
    second = credit(member_fact(alice, "member.commend_city", source_id="c-2"), at=NOV.replace(day=2))
    third = credit(member_fact(alice, "member.commend_city", source_id="c-3"), at=NOV.replace(day=3))
    db.session.commit()
    assert (second[0].points, third[0].points) == (Decimal(10), Decimal(5))
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(25)


def test_a_reversed_wrong_deduction_and_an_adjustment_leave_the_monthly_positive_cap_whole(world):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=30))
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    [wrong] = award(member_fact(alice, "member.no_show"), at=NOV.replace(day=2))
    reverse_entry(admin, wrong.id, "误扣，撤销", at=NOV.replace(day=2, hour=11))
    adjust(admin, SubjectType.MEMBER, alice.id, Decimal(8), "补录", request_key="adj-1", at=NOV.replace(day=2))
    granted = [award(member_fact(alice, "member.commend_city"), at=NOV.replace(day=d))[0] for d in (3, 4, 5, 6)]
    assert [(e.points, e.capped_by) for e in granted] == [
        (Decimal(10), None), (Decimal(10), None), (Decimal(10), None), (Decimal(0), "subject.month_positive")]


def test_a_reversed_award_gives_its_room_back_to_its_own_month(world):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=12))
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    [october] = award(member_fact(alice, "member.commend_city"), at=local(2026, 10, 30, 9))
    [november] = award(member_fact(alice, "member.commend_city"), at=NOV.replace(day=1))
    reverse_entry(admin, november.id, "表彰记录有误", at=NOV.replace(day=2))
    reverse_entry(admin, october.id, "表彰记录有误", at=NOV.replace(day=2))  # October's room, not November's
    granted = [award(member_fact(alice, "member.commend_city"), at=NOV.replace(day=d))[0].points for d in (3, 4)]
    assert granted == [Decimal(10), Decimal(2)]


ITEM_CAP_CASES = {  # an item capped per window; an instant in a window it fills; one in the next window
    "day": ("member.activity_hour", 4, local(2026, 11, 10, 9), local(2026, 11, 11, 9)),  # 8 a day
    "month": ("member.micro_wish", 1, local(2026, 11, 3, 9), local(2026, 12, 2, 9)),  # 10 a month
    "quarter": ("member.pairing_visit", 1, local(2026, 9, 20, 9), local(2026, 10, 2, 9)),  # 5 a quarter
    "year": ("member.report", 1, local(2026, 12, 1, 9), local(2027, 1, 5, 9)),  # 3 a year
}


@pytest.mark.parametrize("window", list(ITEM_CAP_CASES))
def test_a_reversed_award_gives_its_item_room_back_to_its_own_window_not_to_the_reversals(world, window):
    """Filled in one window, one award reversed in the next: the next window is capped as if the reversal was not
    there, and a credit dated in the reversed award's window (written after the reversal) finds its room."""
    item_code, units, filled, later = ITEM_CAP_CASES[window]
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    item = policy_in_force(filled).item(item_code)
    each, count = item.points * units, int(getattr(item.caps, window) / (item.points * units))

    def give(at: datetime) -> LedgerEntry:
        return award(member_fact(alice, item_code, units=units), at=at)[0]  # the assessment entry

    full = [give(filled + timedelta(hours=n)) for n in range(count)]
    reverse_entry(admin, full[-1].id, "重复上报", at=later)
    after = [give(later + timedelta(hours=n + 1)) for n in range(count + 1)]
    assert [(e.points, e.capped_by) for e in after] == [(each, None)] * count + [(0, f"item.{window}")]
    assert give(filled + timedelta(hours=count)).points == each


def test_deductions_are_never_capped(world):
    install_policy(lambda doc: doc["monthly_positive_cap"].update(member=1))
    entries = [award(member_fact(world["alice"], "member.no_show"), at=NOV)[0] for _ in range(3)]
    assert [e.points for e in entries] == [Decimal(-5)] * 3
    assert all(e.kind == EntryKind.DEDUCTION and e.capped_by is None for e in entries)
    assert total_of("member", world["alice"].id, LedgerName.ASSESSMENT, "2026").deducted == Decimal(-15)


def test_totals_are_kept_for_every_period_of_the_credit_instant_in_shanghai(world):
    alice = world["alice"]
    award(member_fact(alice, "member.micro_wish"), at=local(2026, 4, 1, 7))  # still 2026-03-31 in UTC
    for period in ("2026", "2026-H1", "2026-Q2", "2026-04", ALL_TIME):
        assert total_of("member", alice.id, LedgerName.ASSESSMENT, period).net == Decimal(5), period
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-Q1").net == Decimal(0)
    assert total_of("member", alice.id, LedgerName.STANDING, ALL_TIME).balance == Decimal(5)
    assert total_of("member", alice.id, LedgerName.REDEEMABLE, ALL_TIME).balance == Decimal(5)


def test_organization_items_credit_organizations_and_member_items_refuse_them(world):
    entries = award(org_fact(world["finance"], "org.project_done"), at=NOV)
    assert [e.subject_type for e in entries] == [SubjectType.ORGANIZATION]
    with pytest.raises(ValidationFailed):
        award(org_fact(world["finance"], "member.micro_wish"), at=NOV)


def test_unknown_subjects_items_and_float_units_are_refused(world):
    with pytest.raises(NotFound):
        award(Fact(SubjectType.MEMBER, 99999, "member.micro_wish", SourceType.RECORD, "x", NOV), at=NOV)
    with pytest.raises(UnknownItem):
        award(member_fact(world["alice"], "member.no_such_item"), at=NOV)
    with pytest.raises(ValidationFailed):
        award(Fact(SubjectType.MEMBER, world["alice"].id, "member.activity_hour", SourceType.RECORD, "y", NOV, 1.5),
              at=NOV)
    assert entries_of(world["alice"]) == []


def test_entries_cannot_be_updated_or_deleted_even_with_raw_sql(world):
    award(member_fact(world["alice"], "member.micro_wish"), at=NOV)
    for statement in ("UPDATE ledger_entries SET points = 100000", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError):
            db.session.execute(sa.text(statement))
        db.session.rollback()
    assert [e.points for e in entries_of(world["alice"])] == [Decimal(5), Decimal(5)]


def test_an_entry_whose_key_is_taken_returns_the_written_one_and_leaves_the_transaction_usable(world):
    alice = world["alice"]
    [first, _] = award(member_fact(alice, "member.micro_wish", source_id="wish-9"), at=NOV)
    columns = {c.key: getattr(first, c.key) for c in LedgerEntry.__table__.columns if c.key != "id"}
    again = LedgerEntry(**{**columns, "points": Decimal(99), "points_requested": Decimal(99)})
    assert insert_entry(again).id == first.id
    db.session.commit()  # no failed statement left behind: the transaction commits
    assert len(entries_of(alice)) == 2 and again not in db.session
    assert total_of("member", alice.id, LedgerName.ASSESSMENT, "2026-11").earned == Decimal(5)
    assert compare_totals() == []


def test_an_entry_written_without_a_savepoint_is_in_the_session_with_its_defaults(world):
    alice = world["alice"]
    [entry, _] = award(member_fact(alice, "member.micro_wish", source_id="wish-10"), at=NOV)
    assert entry in db.session and entry.id is not None and entry.created_at is not None
    stored = db.session.execute(sa.select(LedgerEntry.units, LedgerEntry.reason, LedgerEntry.created_at)
                                .where(LedgerEntry.id == entry.id)).one()
    assert (stored.units, stored.reason, stored.created_at) == (entry.units, entry.reason, entry.created_at)


def test_the_database_refuses_a_second_entry_with_the_same_idempotency_key(world):
    [entry, _] = award(member_fact(world["alice"], "member.micro_wish"), at=NOV)
    columns = {c.name: getattr(entry, c.key) for c in LedgerEntry.__table__.columns if c.name != "id"}
    with pytest.raises(IntegrityError):
        db.session.execute(sa.insert(LedgerEntry).values(**columns))
    db.session.rollback()


def test_rebuild_finds_no_difference_after_normal_writes_and_repairs_a_tampered_total(world):
    award(member_fact(world["alice"], "member.activity_hour", units=2), at=NOV)
    award(member_fact(world["bob"], "member.no_show"), at=NOV)
    assert compare_totals() == []
    db.session.execute(sa.text("UPDATE point_totals SET earned = earned + 700 WHERE period = '2026-11'"))
    db.session.commit()
    differences = rebuild_totals(fix=True)
    assert {d["key"][0:3] for d in differences} == {("member", world["alice"].id, "assessment"),
                                                   ("member", world["alice"].id, "redeemable"),
                                                   ("member", world["bob"].id, "assessment")}
    assert compare_totals() == []


def test_a_subject_locked_early_in_a_transaction_is_not_locked_again_until_the_next(world, statements):
    """An approval locks the member before the record's row and credits him later: one lock statement."""
    install_policy()  # seeding the first policy would take a SAVEPOINT, after which locks are taken again
    alice_id = world["alice"].id
    first = lock_subject(SubjectType.MEMBER, alice_id)
    lock, after_lock = statements[-1], len(statements)
    assert lock_subject(SubjectType.MEMBER, alice_id) is first
    credit(member_fact(first, source_id="locked-early"), at=local(2026, 11, 5, 9))
    assert lock not in statements[after_lock:]
    db.session.commit()
    lock_subject(SubjectType.MEMBER, alice_id)  # a new transaction takes its own lock
    assert statements[-1] == lock


def lock_statements(statements: list[str]) -> list[str]:
    return [statement for statement in statements if "FOR UPDATE" in statement.upper()]


def test_subjects_locked_together_take_one_statement_per_type_and_chunk_and_are_remembered(world, statements,
                                                                                         monkeypatch):
    """A roster import changing thousands of members locks them in a few statements, not one per member."""
    monkeypatch.setattr(credit_module, "LOCK_CHUNK", 2)
    install_policy()
    members = [world[name].id for name in ("carol", "bob", "alice")]
    organizations = [world["fin1"].id, world["finance"].id]
    before = len(statements)
    lock_subjects([(SubjectType.MEMBER, i) for i in members] + [(SubjectType.ORGANIZATION, i) for i in organizations])
    if db.engine.dialect.name == "postgresql":  # SQLite has no row locks, so the statements say nothing there
        assert len(lock_statements(statements[before:])) == 3  # members in chunks of 2, organizations in one
    assert len(statements) - before == 3
    assert all("ORDER BY" in s and ".id" in s.split("ORDER BY")[1] for s in statements[before:])  # the lock order
    after = len(statements)
    for member_id in members:
        assert lock_subject(SubjectType.MEMBER, member_id).id == member_id
    lock_subjects([(SubjectType.ORGANIZATION, i) for i in organizations])
    assert len(statements) == after


def test_locking_subjects_together_refuses_one_that_does_not_exist(world):
    with pytest.raises(NotFound):
        lock_subjects([(SubjectType.MEMBER, world["alice"].id), (SubjectType.MEMBER, 10**9)])
