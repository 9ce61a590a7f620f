"""A Hypothesis state machine over order / cancel / pick-up / expire / refund, with points funded as time passes
and valid one month (the expiry job runs at any time after a month's end, orders may come between): after every
step no balance and no stock is negative, each debit is refunded at most once (and only for a refunded order),
and totals = ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from points_service.db import cents, db, from_cents
from points_service.domain.access import principal_for
from points_service.domain.errors import ServiceError
from points_service.domain.ledger.settlement import expire_redeemable
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.market.orders import (
    OrderRequest,
    cancel_by_admin,
    cancel_own_order,
    expire_uncollected,
    pick_up,
    place_order,
)
from points_service.domain.market.rules import REFUNDED_STATES
from points_service.domain.market.standing import balance_of
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.models import EntryKind, LedgerEntry, MarketItem, MarketOrder, OrderState
from tests.dbutil import reset_database
from tests.factories import make_world
from tests.factories.ledger import install_policy, local
from tests.factories.market import fund, make_item


class MarketMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        reset_database()
        world = make_world()
        self.items = [make_item(world["north"], price=Decimal(price), stock=stock).id
                      for price, stock in ((7, 3), (3, 1), (12, None))]
        db.session.commit()
        self.members = [world["alice"], world["carol"]]
        self.principals = [principal_for(world["users"]["alice"]), None]
        self.admin = principal_for(world["users"]["community_admin"])
        self.clock = local(2026, 3, 2, 9)
        install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=1))
        for member in self.members:
            fund(member, 25, at=self.clock)

    @rule(who=st.integers(0, 1), points=st.integers(1, 20))
    def fund_more(self, who, points):
        fund(self.members[who], points, at=self.clock)

    @rule()
    def expire_last_months_points(self):
        """The expiry job, run late or not at all for a while: orders may fall between a month's end and it."""
        expire_redeemable(period_containing(self.clock, PeriodKind.MONTH).previous(), policy_in_force(self.clock))
        db.session.commit()

    def _orders(self, state=None) -> list[MarketOrder]:
        statement = sa.select(MarketOrder).order_by(MarketOrder.id)
        return list(db.session.scalars(statement if state is None else statement.where(MarketOrder.state == state)))

    @rule(item=st.integers(0, 2), quantity=st.integers(1, 3), retry=st.booleans())
    def order(self, item, quantity, retry):
        key = f"k-{item}-{quantity}" if retry else None
        try:
            place_order(self.principals[0], OrderRequest(self.items[item], quantity, key), at=self.clock)
        except ServiceError as error:
            assert error.code in {"out_of_stock", "insufficient_points", "limit_reached", "monthly_ceiling_reached"}

    @rule(data=st.data())
    def cancel(self, data):
        orders = self._orders()
        if orders:
            target = data.draw(st.sampled_from(orders))
            action = data.draw(st.sampled_from(["member", "admin"]))
            try:
                if action == "member":
                    cancel_own_order(self.principals[0], target.id, at=self.clock)
                else:
                    cancel_by_admin(self.admin, target.id, "管理员取消", at=self.clock)
            except ServiceError as error:
                assert error.code == "order_not_open" and target.state != OrderState.PLACED

    @rule(data=st.data())
    def hand_over(self, data):
        orders = self._orders(OrderState.PLACED)
        if orders:
            pick_up(self.admin, data.draw(st.sampled_from(orders)).open_code, at=self.clock)

    @rule(days=st.integers(1, 40))
    def let_time_pass_and_expire(self, days):
        self.clock += timedelta(days=days)
        day = period_containing(self.clock, PeriodKind.DAY).previous()
        expire_uncollected(day, policy_in_force(self.clock))

    @invariant()
    def no_balance_and_no_stock_is_negative(self):
        for member in self.members:
            assert balance_of(member.id) >= 0
        for item in db.session.scalars(sa.select(MarketItem)):
            db.session.refresh(item)
            assert item.stock is None or item.stock >= 0
            active = sum(o.quantity for o in self._orders() if o.item_id == item.id
                         and o.state in (OrderState.PLACED, OrderState.PICKED_UP))
            assert item.sold == active

    @invariant()
    def each_debit_is_refunded_at_most_once_and_only_for_a_refunded_order(self):
        for order in self._orders():
            refunds = db.session.scalars(sa.select(LedgerEntry).where(
                LedgerEntry.reverses_id == order.redemption_entry_id)).all()
            assert len(refunds) == (1 if order.state in REFUNDED_STATES else 0)
            assert all(r.kind == EntryKind.REVERSAL and r.points == order.points for r in refunds)

    @invariant()
    def totals_equal_the_ledger(self):
        assert compare_totals() == []
        for member in self.members:
            summed = from_cents(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(cents(LedgerEntry.points)), 0))
                                                  .where(LedgerEntry.subject_id == member.id,
                                                         LedgerEntry.ledger == "redeemable")))
            assert balance_of(member.id) == summed


def test_market_invariants_hold_after_every_step(app):
    run_state_machine_as_test(MarketMachine, settings=settings(
        max_examples=15, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
