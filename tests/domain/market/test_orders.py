"""Placing, picking up, cancelling and expiring orders: the ledger, stock and audit rows move together."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.ledger.corrections import reverse_entries
from points_service.domain.ledger.reading import home_summary
from points_service.domain.ledger.settlement import expire_redeemable, expiry_window
from points_service.domain.ledger.totals import compare_totals
from points_service.domain.lifecycle.status import deactivate_member, local_today
from points_service.domain.market import errors, orders
from points_service.domain.market.catalogue import offered_item, update_item
from points_service.domain.market.orders import (
    OrderRequest,
    cancel_by_admin,
    cancel_own_order,
    expire_uncollected,
    open_order_count,
    pick_up,
    place_order,
)
from points_service.domain.market.standing import balance_of
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import (
    Affiliation,
    DeactivationReason,
    EntryKind,
    LedgerEntry,
    LimitPeriod,
    MarketItem,
    MarketOrder,
    MarketOrderEvent,
    OrderState,
    Role,
)
from tests.factories import make_user, make_world
from tests.factories.ledger import install_policy, local
from tests.factories.market import fund, make_item, principal_of


@pytest.fixture
def world(app):
    world = make_world()
    world["item"] = make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=3)
    db.session.commit()
    fund(world["alice"], 30)
    world["p"] = {name: principal_of(user) for name, user in world["users"].items()}
    return world


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (MarketOrder, LedgerEntry, MarketOrderEvent))


def test_an_order_debits_the_redeemable_ledger_reserves_stock_and_records_the_event(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 2))

    entry = db.session.get(LedgerEntry, order.redemption_entry_id)
    assert (entry.kind, entry.ledger, entry.points, entry.source_id) == ("redemption", "redeemable",
                                                                        Decimal(-20), str(order.id))
    assert balance_of(world["alice"].id) == Decimal(10)
    assert db.session.get(MarketItem, world["item"].id).stock == 1
    assert order.state == OrderState.PLACED and len(order.open_code) == 6
    assert [e.to_state for e in db.session.scalars(sa.select(MarketOrderEvent))] == ["placed"]
    assert open_order_count(world["alice"].id) == 1
    assert compare_totals() == []


def test_an_order_reads_its_item_with_the_members_community_in_one_statement(world, statements):
    alice, item_id, north_id = world["p"]["alice"], world["item"].id, world["north"].id
    db.session.expunge_all()  # nothing in the session: what the order needs, it reads
    statements.clear()
    order = place_order(alice, OrderRequest(item_id, 1))
    assert (order.item.id, order.community.id) == (item_id, north_id)
    item_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM market_items" in s]
    assert len(item_reads) == 1 and "JOIN regions" in item_reads[0]
    assert not [s for s in statements if s.lstrip().startswith("SELECT regions.")]


def test_an_order_reads_the_members_balance_month_and_units_in_one_statement(world, statements):
    place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))  # one order already counts
    statements.clear()
    place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    figures = [s for s in statements if s.lstrip().startswith("SELECT") and ("point_totals" in s or "sum(" in s)]
    assert len(figures) == 1 and "market_orders" in figures[0]
    assert balance_of(world["alice"].id) == Decimal(10)


def test_an_order_reserves_stock_last_so_the_items_row_is_locked_only_until_the_commit(world, statements):
    place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    writes = [" ".join(s.split())[:25] for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert writes[-1] == "UPDATE market_items SET s" and len(writes) > 3


def test_stock_taken_meanwhile_refuses_the_order_and_rolls_back_what_it_wrote(world, monkeypatch):
    before = counts()
    real_find = orders.find_offered

    def sold_out_after_reading(*args, **kwargs):
        item = real_find(*args, **kwargs)
        db.session.execute(sa.update(MarketItem).where(MarketItem.id == item.id).values(stock=0)
                           .execution_options(synchronize_session=False))  # as a concurrent order would
        return item
    monkeypatch.setattr(orders, "find_offered", sold_out_after_reading)
    with pytest.raises(errors.OutOfStock):
        place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    db.session.expire_all()
    assert counts() == before and balance_of(world["alice"].id) == Decimal(30)
    assert db.session.get(MarketItem, world["item"].id).stock == 3  # the UPDATE above rolled back with the rest


def test_a_pick_up_code_held_by_another_open_order_is_drawn_again(world, monkeypatch):
    first = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    codes = iter([first.open_code, "ZZZ999"])
    monkeypatch.setattr(orders, "new_pickup_code", lambda: next(codes))
    second = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    assert second.open_code == "ZZZ999" and second.id != first.id
    assert db.session.get(MarketOrder, second.id).open_code == "ZZZ999"  # as committed
    assert balance_of(world["alice"].id) == Decimal(10) and compare_totals() == []


def test_when_every_code_drawn_is_taken_the_order_fails_and_writes_nothing(world, monkeypatch):
    first = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    monkeypatch.setattr(orders, "new_pickup_code", lambda: first.open_code)
    before = counts()
    with pytest.raises(errors.ServiceError) as refused:
        place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    assert (refused.value.code, refused.value.status) == ("pickup_code_exhausted", 503)
    assert counts() == before and balance_of(world["alice"].id) == Decimal(20)
    assert db.session.get(MarketItem, world["item"].id).sold == 1


def test_the_same_request_key_gives_the_same_order_once(world):
    first = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1, "retry-key-0001"))
    again = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1, "retry-key-0001"))
    assert first.id == again.id and balance_of(world["alice"].id) == Decimal(20)


@pytest.mark.parametrize(("change", "quantity", "error"), [
    ({"stock": 1}, 2, errors.OutOfStock),
    ({"price": Decimal(31), "stock": 9}, 1, errors.InsufficientPoints),
    ({"on_shelf": False}, 1, errors.ItemUnavailable),
    ({"limit_per_member": 1}, 2, errors.LimitReached),
])
def test_a_refused_order_writes_nothing(world, change, quantity, error):
    for name, value in change.items():
        setattr(world["item"], name, value)
    db.session.commit()
    before = counts()
    with pytest.raises(error):
        place_order(world["p"]["alice"], OrderRequest(world["item"].id, quantity))
    assert counts() == before and balance_of(world["alice"].id) == Decimal(30)
    assert db.session.get(MarketItem, world["item"].id).sold == 0


def test_an_order_of_a_member_deactivated_after_his_token_was_checked_is_refused_and_writes_nothing(world):
    db.session.execute(sa.update(Affiliation).values(valid_from=utcnow() - timedelta(days=400)))
    deactivate_member(world["p"]["admin"], world["alice"].id, DeactivationReason.RESIGNED, "离职",
                      local_today(utcnow()))
    before = counts()
    with pytest.raises(errors.MemberInactive):  # the principal was read before: the order waited for his lock
        place_order(world["p"]["alice"], OrderRequest(world["item"].id))
    assert counts() == before and db.session.get(MarketItem, world["item"].id).sold == 0


def test_a_deactivation_with_a_reason_of_the_longest_length_closes_his_order_within_its_columns(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id))
    db.session.execute(sa.update(Affiliation).values(valid_from=utcnow() - timedelta(days=400)))
    deactivate_member(world["p"]["admin"], world["alice"].id, DeactivationReason.RESIGNED, "离" * 200,
                      local_today(utcnow()))  # closed with "{the code's name}：{reason}", past 200 characters
    order = db.session.get(MarketOrder, order.id)
    event = db.session.scalar(sa.select(MarketOrderEvent).where(MarketOrderEvent.to_state == OrderState.CANCELLED))
    assert order.state == OrderState.CANCELLED and balance_of(world["alice"].id) == Decimal(30)
    assert len(order.close_reason) == len(event.reason) == 200 and order.close_reason.startswith("离职：离")


def test_an_unknown_item_and_another_communitys_item_are_not_found(world):
    south_item = make_item(world["south"])
    db.session.commit()
    for item_id in (999_999, south_item.id):
        with pytest.raises(errors.ItemNotFound):
            place_order(world["p"]["alice"], OrderRequest(item_id, 1))
    assert counts()[0] == 0


def test_an_item_of_the_street_is_offered_to_each_community_below_it(world):
    street_item = make_item(world["street"], price=Decimal(5))
    db.session.commit()
    order = place_order(world["p"]["alice"], OrderRequest(street_item.id, 1))
    assert order.community_id == world["north"].id


def test_the_monthly_ceiling_of_the_policy_refuses_the_order_that_would_pass_it(world):
    install_policy(lambda doc: doc["redemption"].update(monthly_ceiling=15))
    place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    with pytest.raises(errors.MonthlyCeilingReached):
        place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))


def test_the_minimum_balance_must_remain_after_the_order(world):
    install_policy(lambda doc: doc["redemption"].update(minimum_balance=15))
    place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    with pytest.raises(errors.InsufficientPoints):
        place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    assert balance_of(world["alice"].id) == Decimal(20)


def test_the_community_admin_hands_the_order_over_by_its_code_once(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    code = order.open_code
    picked = pick_up(world["p"]["community_admin"], f" {code.lower()} ")
    assert picked.state == OrderState.PICKED_UP and picked.open_code is None and picked.refund_entry_id is None
    with pytest.raises(errors.PickupCodeInvalid):
        pick_up(world["p"]["community_admin"], code)
    assert balance_of(world["alice"].id) == Decimal(20)


def test_a_wrong_code_or_another_communitys_order_is_not_found_and_changes_nothing(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    south_admin = principal_of(make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin"))
    db.session.commit()
    before = counts()
    for principal, code in ((world["p"]["community_admin"], "ZZZZZZ"), (south_admin, order.open_code)):
        with pytest.raises(errors.PickupCodeInvalid):
            pick_up(principal, code)
    assert counts() == before and db.session.get(MarketOrder, order.id).state == OrderState.PLACED


def test_the_member_cancels_before_pick_up_and_gets_points_and_stock_back_once(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 2))
    cancel_own_order(world["p"]["alice"], order.id)
    refund = db.session.get(LedgerEntry, order.refund_entry_id)
    assert (refund.kind, refund.points, refund.reverses_id) == (EntryKind.REVERSAL, Decimal(20),
                                                                order.redemption_entry_id)
    assert balance_of(world["alice"].id) == Decimal(30)
    item = db.session.get(MarketItem, world["item"].id)
    assert (item.stock, item.sold) == (3, 0)
    with pytest.raises(errors.OrderClosed):
        cancel_own_order(world["p"]["alice"], order.id)
    assert compare_totals() == []


def test_another_member_cannot_cancel_an_order_he_did_not_place(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    with pytest.raises(errors.OrderNotFound):
        cancel_own_order(world["p"]["bob"], order.id)


def test_an_admin_cancels_with_a_reason_that_the_event_keeps(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    cancel_by_admin(world["p"]["community_admin"], order.id, "商品破损")
    event = db.session.scalar(sa.select(MarketOrderEvent).where(MarketOrderEvent.to_state == "cancelled"))
    assert (event.from_state, event.reason, event.actor_id) == ("placed", "商品破损",
                                                                world["users"]["community_admin"].id)
    assert balance_of(world["alice"].id) == Decimal(30)


def test_changing_an_items_limit_period_counts_the_orders_already_placed_in_the_new_period(world):
    """One per month, then one per year: March's order is this year's one (it was counted by the period key stored
    when it was placed, 2026-03, which never equals 2026). Back to one per month, May has its own."""
    buyer, admin, may = world["p"]["alice"], world["p"]["admin"], local(2026, 5, 10, 9)
    item = make_item(world["north"], price=Decimal(1), stock=None, limit_per_member=1)
    db.session.commit()
    place_order(buyer, OrderRequest(item.id), at=local(2026, 3, 10, 9))
    update_item(admin, item.id, {"limit_period": LimitPeriod.YEAR})
    with pytest.raises(errors.LimitReached):
        place_order(buyer, OrderRequest(item.id), at=may)
    assert offered_item(buyer, item.id, at=may).limit_left == 0
    update_item(admin, item.id, {"limit_period": LimitPeriod.MONTH})
    assert offered_item(buyer, item.id, at=may).limit_left == 1
    place_order(buyer, OrderRequest(item.id), at=may)
    with pytest.raises(errors.LimitReached):
        place_order(buyer, OrderRequest(item.id), at=may)


def test_the_job_expires_and_refunds_orders_past_their_pick_up_window_and_a_rerun_changes_nothing(world):
    order = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    kept = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1), at=utcnow() + timedelta(days=10))
    day = period_containing(order.pickup_deadline + timedelta(days=1), PeriodKind.DAY)
    policy = policy_in_force(utcnow())
    assert expire_uncollected(day, policy) == {"expired": 1, "failed": 0}
    assert expire_uncollected(day, policy) == {"expired": 0, "failed": 0}
    assert db.session.get(MarketOrder, order.id).state == OrderState.EXPIRED
    assert db.session.get(MarketOrder, kept.id).state == OrderState.PLACED
    assert balance_of(world["alice"].id) == Decimal(20)
    assert compare_totals() == []


def test_an_order_whose_refund_fails_is_counted_and_left_placed_and_the_job_expires_the_others(world):
    """A debit reversed outside the market (as a raw reversal can be) leaves its order no refund to write."""
    stuck = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    later = place_order(world["p"]["alice"], OrderRequest(world["item"].id, 1))
    reverse_entries([db.session.get(LedgerEntry, stuck.redemption_entry_id)], world["p"]["admin"], "误冲正",
                    utcnow())
    db.session.commit()
    day = period_containing(later.pickup_deadline + timedelta(days=1), PeriodKind.DAY)

    run = run_job(JOBS_BY_ID["market_order_expiry"], day)

    assert (run.status, run.result) == ("succeeded", {"expired": 1, "failed": 1})
    db.session.expire_all()
    assert db.session.get(MarketOrder, stuck.id).state == OrderState.PLACED
    assert db.session.get(MarketOrder, later.id).state == OrderState.EXPIRED
    assert db.session.get(MarketItem, world["item"].id).stock == 2  # the stuck order's unit stays reserved
    assert compare_totals() == []


def test_refunded_points_keep_their_original_expiry(world):
    """Points that expire at the end of this month: spent on an order, refunded, they still expire then."""
    policy = install_policy()
    bob = world["bob"]
    bob_item = make_item(world["south"], price=Decimal(10))
    db.session.commit()
    month = period_containing(utcnow(), PeriodKind.MONTH)
    fund(bob, 10, at=expiry_window(month.previous(), 12)[0] + timedelta(hours=1))  # valid until this month's end
    order = place_order(principal_of(world["users"]["bob"]), OrderRequest(bob_item.id, 1))
    cancel_own_order(principal_of(world["users"]["bob"]), order.id)
    assert home_summary(bob.id)["expiring"]["points"] == Decimal(10)
    expire_redeemable(month, policy)
    db.session.commit()
    assert balance_of(bob.id) == Decimal(0)


@pytest.mark.parametrize("closing", ["cancelled", "pick-up window passed"])
@pytest.mark.parametrize("job", ["run before the refund", "run after the refund"])
def test_points_refunded_after_the_month_they_expired_in_stay_expired(world, closing, job):
    """Spent on an order before the end of the month they expire in, refunded in the next month: they expired at
    that month's end, whether the expiry job ran before the refund or runs after it, and cannot be spent again."""
    install_policy()
    bob, buyer = world["bob"], principal_of(world["users"]["bob"])
    item, other = make_item(world["south"], price=Decimal(10)), make_item(world["south"], price=Decimal(10))
    db.session.commit()
    last = period_containing(utcnow(), PeriodKind.MONTH).previous()
    fund(bob, 10, at=expiry_window(last.previous(), 12)[0] + timedelta(hours=1))  # valid until last month's end
    order = place_order(buyer, OrderRequest(item.id, 1), at=last.end - timedelta(days=3))
    if job == "run before the refund":
        run_job(JOBS_BY_ID["redeemable_expiry"], last)
    if closing == "cancelled":
        cancel_own_order(buyer, order.id)
    else:
        expire_uncollected(period_containing(order.pickup_deadline, PeriodKind.DAY), policy_in_force(utcnow()))
    assert balance_of(bob.id) == Decimal(0) and home_summary(bob.id)["redeemable"] == Decimal(0)
    with pytest.raises(errors.InsufficientPoints):
        place_order(buyer, OrderRequest(other.id, 1))
    run_job(JOBS_BY_ID["redeemable_expiry"], last)
    assert [e.points for e in db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.kind == EntryKind.EXPIRY))] == [Decimal(-10)]
    assert balance_of(bob.id) == Decimal(0) and compare_totals() == []


def test_points_expired_at_the_months_end_cannot_be_spent_before_the_expiry_job_has_written_them(world):
    """Last month's expiry takes effect at its end: an order between that instant and the job's run (day 1, 00:30,
    or later after downtime) spends only what did not expire, so the job leaves no balance below zero; once the
    job has written the expiry, nothing is held back twice."""
    policy = install_policy()
    bob, buyer = world["bob"], principal_of(world["users"]["bob"])
    ten, fifteen, five = (make_item(world["south"], price=Decimal(price)) for price in (10, 15, 5))
    db.session.commit()
    fund(bob, 10, at=utcnow() - timedelta(days=500))  # expired at the end of last month
    fund(bob, 10)  # valid
    assert not offered_item(buyer, fifteen.id).affordable  # a balance of 20, of which 10 may be spent
    with pytest.raises(errors.InsufficientPoints):
        place_order(buyer, OrderRequest(ten.id, 2))
    place_order(buyer, OrderRequest(ten.id, 1))
    expire_redeemable(period_containing(utcnow(), PeriodKind.MONTH).previous(), policy)
    db.session.commit()
    assert balance_of(bob.id) == Decimal(0) and compare_totals() == []
    fund(bob, 5)
    assert offered_item(buyer, five.id).affordable  # the written expiry is not held back again


@pytest.mark.parametrize(("last_months", "this_months", "spendable"), [
    (12, 6, True),  # valid under last month's policy: the job expires nothing, the order may spend it
    (6, 12, False),  # expired under last month's policy: held back until the job writes it, then gone
], ids=["validity-shortened", "validity-lengthened"])
def test_what_an_order_holds_back_follows_the_expired_months_own_policy(world, last_months, this_months, spendable):
    """As the expiry job does (jobs/runner.py): the validity of the month being expired, not today's policy's."""
    month = period_containing(utcnow(), PeriodKind.MONTH)
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=last_months))
    install_policy(lambda doc: doc["redeemable_expiry"].update(validity_months=this_months),
                   effective_from=month.start)
    bob, buyer = world["bob"], principal_of(world["users"]["bob"])
    item = make_item(world["south"], price=Decimal(10))
    db.session.commit()
    fund(bob, 10, at=utcnow() - timedelta(days=250))  # within 12 months of last month's end, not within 6
    assert offered_item(buyer, item.id).affordable is spendable
    if not spendable:
        with pytest.raises(errors.InsufficientPoints):
            place_order(buyer, OrderRequest(item.id))
    run_job(JOBS_BY_ID["redeemable_expiry"], month.previous())
    if spendable:
        place_order(buyer, OrderRequest(item.id))
    assert balance_of(bob.id) == Decimal(0) and compare_totals() == []
