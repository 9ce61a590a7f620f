"""A member's figures against the redemption rules: balance, this month's redemptions, units per item.

Read under the member's row lock when ordering (``orders.place_order``), so two orders of one member are
judged one after the other (PostgreSQL); on SQLite the database's single writer serializes them.
"""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa

from points_service.db import cents, core_execute, db, from_cents, sql_constant
from points_service.domain.ledger.settlement import unsettled_expiry_params, unsettled_expiry_sql
from points_service.domain.market.rules import Standing, limit_period_key, month_key
from points_service.models import (
    ALL_TIME,
    LedgerName,
    LimitPeriod,
    MarketItem,
    MarketOrder,
    OrderState,
    PointTotal,
    SubjectType,
)

ACTIVE_STATES = (OrderState.PLACED, OrderState.PICKED_UP)  # what counts against limits and the ceiling


def balance_of(member_id: int):
    return from_cents(core_execute(_spendable_statement(False), {"member_id": member_id}).scalar())


def redeemed_in_month(member_id: int, at: datetime):
    return from_cents(db.session.scalar(_redeemed(member_id, month_key(at))))


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
    expiry = _expiry_params(member_id, at)
    balance = from_cents(core_execute(_spendable_statement(expiry is not None),
                                      {"member_id": member_id, **(expiry or {})}).scalar())
    month, units = redeemed_in_month(member_id, at), units_by_item(member_id, at)
    return {item.id: Standing(balance, month, units.get((item.id, limit_period_key(at, item.limit_period)), 0))
            for item in items}


def standing_for(member_id: int, item: MarketItem, at: datetime) -> Standing:
    """``standings`` for one item in one statement: what an order is judged on."""
    expiry = _expiry_params(member_id, at)
    balance, month, units = core_execute(_standing_statement(expiry is not None), {
        "member_id": member_id, "month": month_key(at), "item_id": item.id,
        "period_key": limit_period_key(at, item.limit_period), **(expiry or {})}).one()
    return Standing(from_cents(balance), from_cents(month), int(units))


def _expiry_params(member_id: int, at: datetime) -> dict | None:
    return unsettled_expiry_params((SubjectType.MEMBER.value, member_id), at)


@functools.cache
def _standing_statement(expiry: bool) -> sa.Select:
    member = sa.bindparam("member_id")
    units = sa.select(sa.func.coalesce(sa.func.sum(MarketOrder.quantity), 0)).where(
        MarketOrder.member_id == member, MarketOrder.item_id == sa.bindparam("item_id"),
        MarketOrder.limit_period_key == sa.bindparam("period_key"), MarketOrder.state.in_(ACTIVE_STATES))
    return sa.select(_spendable_statement(expiry).scalar_subquery(),
                     _redeemed(member, sa.bindparam("month")).scalar_subquery(), units.scalar_subquery())


@functools.cache
def _spendable_statement(expiry: bool) -> sa.Select:
    """The member's redeemable balance in hundredths (none when he never had a redeemable entry), less what
    expired at the end of last month and the expiry job has not written yet (with ``expiry``)."""
    member = sa.bindparam("member_id")
    balance = cents(PointTotal.earned) + cents(PointTotal.deducted) + cents(PointTotal.settled)
    if expiry:
        balance = balance - unsettled_expiry_sql(sql_constant(SubjectType.MEMBER), member)
    return sa.select(balance).where(
        PointTotal.subject_type == SubjectType.MEMBER, PointTotal.subject_id == member,
        PointTotal.ledger == LedgerName.REDEEMABLE, PointTotal.period == ALL_TIME)


def _redeemed(member_id, month: str) -> sa.Select:
    """Points of the member's active orders placed in ``month``, in hundredths."""
    return sa.select(sa.func.coalesce(sa.func.sum(cents(MarketOrder.points)), 0)).where(
        MarketOrder.member_id == member_id, MarketOrder.month_key == month, MarketOrder.state.in_(ACTIVE_STATES))
