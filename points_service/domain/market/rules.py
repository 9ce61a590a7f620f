"""Pure rules of the 积分超市: pick-up codes, order states and what a member may still order. No database."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy.model import RedemptionRule
from points_service.models.market import LimitPeriod, OrderState

# No 0/O, 1/I/L: a code is read aloud or typed on a tablet.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PLACED: frozenset({OrderState.PICKED_UP, OrderState.CANCELLED, OrderState.EXPIRED}),
    OrderState.PICKED_UP: frozenset(),
    OrderState.CANCELLED: frozenset(),
    OrderState.EXPIRED: frozenset(),
}
REFUNDED_STATES = frozenset({OrderState.CANCELLED, OrderState.EXPIRED})


def new_pickup_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What a person typed (spaces, lower case, a hyphen) as a stored code."""
    return "".join(char for char in text.upper() if char.isalnum())


SCANNED_QUERY = re.compile(r"[?&]code=([^&#\s]+)", re.IGNORECASE)


def code_from_scan(text: str) -> str:
    """A code as typed or as a scanner types a QR: the bare code, ``…?code=7KX2QD`` or a prefixed form
    (``pickup:7KX2QD``, ``https://…/pickup/7KX2QD``) all give ``7KX2QD``."""
    text = (text or "").strip()
    query = SCANNED_QUERY.search(text)
    if query:
        return normalize_code(query.group(1))
    return normalize_code(re.split(r"[:/]", text)[-1])


def can_move(state: OrderState, to: OrderState) -> bool:
    return to in TRANSITIONS[OrderState(state)]


def can_pick_up(state: OrderState) -> bool:
    return can_move(state, OrderState.PICKED_UP)


def can_cancel(state: OrderState) -> bool:
    return can_move(state, OrderState.CANCELLED)


def limit_period_of(at: datetime, period: LimitPeriod) -> Period:
    return period_containing(at, PeriodKind(str(period)))


def limit_period_key(at: datetime, period: LimitPeriod) -> str:
    return limit_period_of(at, period).key


def month_key(at: datetime) -> str:
    return period_containing(at, PeriodKind.MONTH).key


def pickup_deadline(placed_at: datetime, rule: RedemptionRule) -> datetime:
    return placed_at + timedelta(days=rule.pickup_window_days)


def is_visible(on_shelf: bool, visible_from: datetime | None, visible_until: datetime | None, at: datetime) -> bool:
    """On the shelf and inside its window [from, until)."""
    return on_shelf and (visible_from is None or visible_from <= at) and (visible_until is None or at < visible_until)


@dataclass(frozen=True)
class Standing:
    """What a member holds against the rules when he looks at or orders an item."""

    balance: Decimal
    redeemed_this_month: Decimal  # points in his open and picked-up orders of this month
    units_in_limit_period: int  # units of this item in his open and picked-up orders of the item's period


def spendable(standing: Standing, rule: RedemptionRule) -> Decimal:
    """The most a member may spend now: his balance above the minimum, within the monthly ceiling."""
    room = standing.balance - rule.minimum_balance
    if rule.monthly_ceiling is not None:
        room = min(room, rule.monthly_ceiling - standing.redeemed_this_month)
    return max(room, Decimal(0))


def limit_left(limit_per_member: int | None, standing: Standing) -> int | None:
    return None if limit_per_member is None else max(limit_per_member - standing.units_in_limit_period, 0)


def refusal(price: Decimal, quantity: int, limit_per_member: int | None, standing: Standing,
            rule: RedemptionRule) -> str | None:
    """Why this order may not be placed (``limit``, ``balance``, ``ceiling``, in that order), or None. Stock is
    the database's to say."""
    cost = price * quantity
    left = limit_left(limit_per_member, standing)
    if left is not None and quantity > left:
        return "limit"
    if standing.balance - cost < rule.minimum_balance or standing.balance - cost < 0:
        return "balance"
    if rule.monthly_ceiling is not None and standing.redeemed_this_month + cost > rule.monthly_ceiling:
        return "ceiling"
    return None
