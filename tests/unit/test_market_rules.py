"""The 积分超市's pure rules: what a member may still spend, why an order is refused, states and codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from points_service.domain.market.rules import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Standing,
    can_cancel,
    can_pick_up,
    code_from_scan,
    is_visible,
    limit_left,
    new_pickup_code,
    normalize_code,
    refusal,
    spendable,
)
from points_service.domain.policy.model import RedemptionRule
from points_service.models import OrderState

RULE = RedemptionRule(minimum_balance=Decimal(5), monthly_ceiling=Decimal(50), pickup_window_days=7)
AT = datetime(2026, 11, 3, 2, tzinfo=UTC)


def standing(balance=100, month=0, units=0) -> Standing:
    return Standing(Decimal(balance), Decimal(month), units)


@pytest.mark.parametrize(("figures", "price", "quantity", "limit", "why"), [
    (standing(), 10, 1, None, None),
    (standing(balance=14), 10, 1, None, "balance"),  # would leave 4, below the minimum of 5
    (standing(balance=15), 10, 1, None, None),  # leaves exactly the minimum
    (standing(month=45), 10, 1, None, "ceiling"),
    (standing(units=1), 1, 1, 1, "limit"),
    (standing(units=1), 1, 1, 2, None),
    (standing(units=0), 1, 3, 2, "limit"),
])
def test_an_order_is_refused_for_the_first_rule_it_breaks(figures, price, quantity, limit, why):
    assert refusal(Decimal(price), quantity, limit, figures, RULE) == why


def test_spendable_is_the_balance_above_the_minimum_within_the_monthly_ceiling_and_never_negative():
    assert spendable(standing(balance=30), RULE) == Decimal(25)
    assert spendable(standing(balance=100, month=40), RULE) == Decimal(10)
    assert spendable(standing(balance=2), RULE) == Decimal(0)
    no_ceiling = RedemptionRule(Decimal(0), None, 7)
    assert spendable(standing(balance=300, month=1000), no_ceiling) == Decimal(300)


def test_limit_left_counts_down_and_stops_at_zero():
    assert limit_left(None, standing(units=9)) is None
    assert (limit_left(2, standing(units=1)), limit_left(2, standing(units=5))) == (1, 0)


def test_only_a_placed_order_can_be_picked_up_or_cancelled():
    assert can_pick_up(OrderState.PLACED) and can_cancel(OrderState.PLACED)
    for closed in (OrderState.PICKED_UP, OrderState.CANCELLED, OrderState.EXPIRED):
        assert not can_pick_up(closed) and not can_cancel(closed)


def test_visibility_is_on_shelf_within_a_half_open_window():
    assert is_visible(True, None, None, AT)
    assert not is_visible(False, None, None, AT)
    assert is_visible(True, AT, AT + timedelta(days=1), AT)
    assert not is_visible(True, AT - timedelta(days=1), AT, AT)


def test_pickup_codes_use_an_unambiguous_alphabet_and_typed_codes_are_normalized():
    codes = {new_pickup_code() for _ in range(200)}
    assert len(codes) > 190 and all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert normalize_code(" 7kx-2qd ") == "7KX2QD"


@pytest.mark.parametrize("scanned", ["7KX2QD", " 7kx-2qd\n", "7KX 2QD", "pickup:7KX2QD", "PSPICKUP:7kx2qd",
                                     "https://example.org/pickup/7KX2QD", "https://example.org/p?x=1&code=7kx2qd",
                                     "points://pickup?code=7KX2QD#top"])
def test_a_scanned_or_typed_pickup_code_is_read_as_the_stored_code(scanned):
    assert code_from_scan(scanned) == "7KX2QD"


def test_an_empty_scan_reads_as_no_code():
    assert code_from_scan("") == "" and code_from_scan("   ") == ""
