"""A member's figures against the redemption rules: balance, this month's redemptions, units per item.

Read under the member's row lock when ordering (``orders.place_order``), so two orders of one member are
judged one after the other (PostgreSQL); on SQLite the database's single writer serializes them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import cents, db, from_cents
from points_service.domain.ledger.totals import total_of
from points_service.domain.market.rules import Standing, limit_period_key, month_key
from points_service.models import ALL_TIME, LedgerName, LimitPeriod, MarketItem, MarketOrder, OrderState, SubjectType

ACTIVE_STATES = (OrderState.PLACED, OrderState.PICKED_UP)  # what counts against limits and the ceiling


def balance_of(member_id: int):
    return total_of(SubjectType.MEMBER, member_id, LedgerName.REDEEMABLE, ALL_TIME).balance


def redeemed_in_month(member_id: int, at: datetime):
    return from_cents(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(cents(MarketOrder.points)), 0)).where(
        MarketOrder.member_id == member_id, MarketOrder.month_key == month_key(at),
        MarketOrder.state.in_(ACTIVE_STATES))))


def units_by_item(member_id: int, at: datetime) -> dict[tuple[int, str], int]:
    """Units of each item in the member's active orders, by (item, limit period key) of the current periods."""
    keys = [limit_period_key(at, period) for period in LimitPeriod]
    rows = db.session.execute(
        sa.select(MarketOrder.item_id, MarketOrder.limit_period_key, sa.func.sum(MarketOrder.quantity))
        .where(MarketOrder.member_id == member_id, MarketOrder.state.in_(ACTIVE_STATES),
               MarketOrder.limit_period_key.in_(keys))
        .group_by(MarketOrder.item_id, MarketOrder.limit_period_key))
    return {(item_id, key): int(units) for item_id, key, units in rows}


def standings(member_id: int, items: list[MarketItem], at: datetime) -> dict[int, Standing]:
    balance, month = balance_of(member_id), redeemed_in_month(member_id, at)
    units = units_by_item(member_id, at)
    return {item.id: Standing(balance, month, units.get((item.id, limit_period_key(at, item.limit_period)), 0))
            for item in items}
