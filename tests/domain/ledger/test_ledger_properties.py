"""Hypothesis stateful test of the ledger: awards, caps, reversals, adjustments, decay, reset and
rebuilds in any order; after every step the invariants of QUALITY.md hold."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy.orm import aliased

from points_service.db import cents, db, from_cents
from points_service.domain.access import principal_for
from points_service.domain.errors import Conflict
from points_service.domain.ledger.corrections import adjust, reverse_entry
from points_service.domain.ledger.credit import Fact, award
from points_service.domain.ledger.settlement import balances_at
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.domain.policy.rules import CAP_WINDOWS, apply_caps
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import (
    ALL_TIME,
    SCORING_KINDS,
    SETTLEMENT_KINDS,
    EntryKind,
    LedgerEntry,
    LedgerName,
    PointTotal,
    SourceType,
    SubjectType,
)
from tests.dbutil import reset_database
from tests.factories import make_world
from tests.factories.ledger import local

ITEMS = ["member.activity_hour", "member.micro_wish", "member.commend_city", "member.no_show", "member.grid_problem"]
MONTHLY_CAP = Decimal(30)  # the default policy's cap on a member's positive points in a month
START = local(2026, 1, 5, 9)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        reset_database()
        world = make_world()
        self.members = [world["alice"].id, world["bob"].id]
        self.admin = principal_for(world["users"]["admin"])
        self.clock = START
        self.policy = policy_in_force(START)
        self.credited: dict[tuple, list[int]] = {}
        self.adjustments = 0

    @rule(member=st.sampled_from([0, 1]), item=st.sampled_from(ITEMS), source=st.integers(0, 12),
          units=st.integers(1, 6))
    def credit_a_fact(self, member, item, source, units):
        self._credit(member, item, source, units, self.clock)

    @rule(member=st.sampled_from([0, 1]), item=st.sampled_from(ITEMS), source=st.integers(0, 12),
          units=st.integers(1, 6), hours=st.integers(1, 24 * 40))
    def credit_a_late_fact(self, member, item, source, units, hours):
        """Credited at an earlier instant than others already written (windows whose awards were reversed since)."""
        self._credit(member, item, source, units, max(self.clock - timedelta(hours=hours), START))

    def _credit(self, member, item, source, units, at):
        fact = Fact(SubjectType.MEMBER, self.members[member], item, SourceType.RECORD, f"s{source}", at,
                    Decimal(units))
        ids = sorted(entry.id for entry in award(fact, at=at))
        key = (member, item, source)
        assert self.credited.setdefault(key, ids) == ids, "a retried fact must return its first entries"

    @rule(hours=st.one_of(st.integers(1, 48), st.integers(1, 24 * 45)))
    def let_time_pass(self, hours):
        self.clock += timedelta(hours=hours)

    @rule(data=st.data())
    def reverse_an_award(self, data):
        """What admins mostly reverse, often in a later cap window than the award's."""
        reversal = aliased(LedgerEntry)
        ids = db.session.scalars(sa.select(LedgerEntry.id).where(
            LedgerEntry.kind == EntryKind.AWARD, LedgerEntry.ledger == LedgerName.ASSESSMENT,
            ~sa.exists().where(reversal.reverses_id == LedgerEntry.id)).order_by(LedgerEntry.id)).all()
        if ids:
            reverse_entry(self.admin, data.draw(st.sampled_from(ids)), "纠错", at=self.clock)

    @rule(data=st.data())
    def reverse_an_entry(self, data):
        ids = db.session.scalars(sa.select(LedgerEntry.id).order_by(LedgerEntry.id)).all()
        if not ids:
            return
        entry = db.session.get(LedgerEntry, data.draw(st.sampled_from(ids)))
        already = db.session.scalar(sa.select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry.id))
        try:
            reversal = reverse_entry(self.admin, entry.id, "纠错", at=self.clock)
        except Conflict:  # reversed once; a reversal or a settlement job's entry never
            assert already is not None or entry.kind in SETTLEMENT_KINDS | {EntryKind.REVERSAL}
            return
        assert already is None and entry.kind in SCORING_KINDS - {EntryKind.REVERSAL}
        assert reversal.points == -entry.points

    @rule(member=st.sampled_from([0, 1]), points=st.integers(-500, 500).filter(bool))
    def adjust_by_hand(self, member, points):
        self.adjustments += 1
        adjust(self.admin, SubjectType.MEMBER, self.members[member], Decimal(points) / 100, "人工调整",
               request_key=f"adj-{self.adjustments}", at=self.clock)

    @precondition(lambda self: self.clock > local(2026, 2, 1))
    @rule()
    def run_last_months_decay(self):
        period = period_containing(self.clock, PeriodKind.MONTH).previous()
        before = balances_at(LedgerName.STANDING, period.end)
        run_job(JOBS_BY_ID["standing_decay"], period)
        for entry in db.session.scalars(sa.select(LedgerEntry).where(
                LedgerEntry.kind == EntryKind.DECAY, LedgerEntry.source_id == f"standing_decay:{period.key}")):
            balance = before[(str(entry.subject_type), entry.subject_id)]
            assert Decimal(0) < -entry.points <= balance, "decay never exceeds the balance at the cutoff"

    @precondition(lambda self: self.clock > local(2027, 1, 1))
    @rule()
    def run_last_years_reset(self):
        run_job(JOBS_BY_ID["assessment_reset"], period_containing(self.clock, PeriodKind.YEAR).previous())

    @invariant()
    def every_total_equals_the_sum_of_its_entries(self):
        assert compare_totals() == []
        for subject_id in self.members:
            assert self._stored(subject_id, LedgerName.ASSESSMENT) == self._summed(subject_id, LedgerName.ASSESSMENT)
            assert self._stored(subject_id, LedgerName.REDEEMABLE) == self._summed(subject_id, LedgerName.REDEEMABLE)
            standing = self._summed(subject_id, LedgerName.ASSESSMENT, SCORING_KINDS) + self._summed(
                subject_id, LedgerName.STANDING)
            assert self._stored(subject_id, LedgerName.STANDING) == standing

    def _stored(self, subject_id, ledger) -> Decimal:
        total = db.session.get(PointTotal, ("member", subject_id, ledger, ALL_TIME))
        return total.balance if total else Decimal(0)

    def _summed(self, subject_id, ledger, kinds=None) -> Decimal:
        query = sa.select(sa.func.coalesce(sa.func.sum(cents(LedgerEntry.points)), 0)).where(
            LedgerEntry.subject_id == subject_id, LedgerEntry.ledger == ledger)
        if kinds is not None:
            query = query.where(LedgerEntry.kind.in_(kinds))
        return from_cents(db.session.scalar(query))

    @invariant()
    def no_fact_is_credited_twice_and_no_entry_is_reversed_twice(self):
        facts = db.session.execute(sa.select(LedgerEntry.source_id, LedgerEntry.item_code, LedgerEntry.ledger,
                                             sa.func.count()).where(LedgerEntry.kind.in_(["award", "deduction"]))
                                   .group_by(LedgerEntry.source_id, LedgerEntry.item_code, LedgerEntry.ledger,
                                             LedgerEntry.subject_id)).all()
        assert all(count == 1 for *_, count in facts)
        reversed_ids = db.session.scalars(sa.select(LedgerEntry.reverses_id).where(
            LedgerEntry.reverses_id.is_not(None))).all()
        assert len(reversed_ids) == len(set(reversed_ids))

    @invariant()
    def every_award_granted_what_the_caps_left_when_it_was_written(self):
        """Replayed in the order they were written: each assessment award granted what its item's caps and the
        monthly cap left, counting the awards written before it in the windows of its own credit instant less
        those reversed before it (whenever those awards were credited, whenever reversed)."""
        entries = db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.ledger == LedgerName.ASSESSMENT).order_by(LedgerEntry.id)).all()
        reversed_by = {entry.reverses_id: entry.id for entry in entries if entry.reverses_id is not None}
        awards = [entry for entry in entries if entry.kind == EntryKind.AWARD]
        windows = {entry.id: {name: period_containing(entry.credited_at, PeriodKind(name)).key
                              for name in CAP_WINDOWS} for entry in awards}
        for entry in awards:
            earlier = [a for a in awards if a.id < entry.id and a.subject_id == entry.subject_id
                       and reversed_by.get(a.id, entry.id + 1) > entry.id]
            used = {name: sum((a.points for a in earlier if a.item_code == entry.item_code
                               and windows[a.id][name] == key), Decimal(0))
                    for name, key in windows[entry.id].items()}
            month = sum((a.points for a in earlier if windows[a.id]["month"] == windows[entry.id]["month"]),
                        Decimal(0))
            expected = apply_caps(entry.points_requested, self.policy.item(entry.item_code).caps, used,
                                  MONTHLY_CAP, month)
            assert (entry.points, entry.capped_by) == (expected.granted, expected.capped_by), entry.id

    @invariant()
    def caps_hold_and_every_award_grants_between_zero_and_what_was_asked(self):
        """The awards not reversed stay within the monthly cap and each item's caps, in the windows of their own
        credit instants (a reversed award gives its room back to its windows, whenever it is reversed)."""
        awarded, by_item = defaultdict(Decimal), defaultdict(Decimal)
        reversed_ids = set(db.session.scalars(sa.select(LedgerEntry.reverses_id).where(
            LedgerEntry.reverses_id.is_not(None))))
        for entry in db.session.scalars(sa.select(LedgerEntry).where(
                LedgerEntry.kind == EntryKind.AWARD, LedgerEntry.ledger == LedgerName.ASSESSMENT)):
            assert Decimal(0) <= entry.points <= entry.points_requested
            assert isinstance(entry.points, Decimal)
            if entry.id not in reversed_ids:
                month = period_containing(entry.credited_at, PeriodKind.MONTH).key
                awarded[(entry.subject_id, month)] += entry.points
                for window in CAP_WINDOWS:
                    key = period_containing(entry.credited_at, PeriodKind(window)).key
                    by_item[(entry.subject_id, entry.item_code, window, key)] += entry.points
        assert all(total <= MONTHLY_CAP for total in awarded.values())
        for (_, item_code, window, _), total in by_item.items():
            cap = getattr(self.policy.item(item_code).caps, window)
            assert cap is None or total <= cap, f"{item_code} over its {window} cap"


def test_ledger_invariants_hold_after_every_step(app):
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=20, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
