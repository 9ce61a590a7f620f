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
from points_service.domain.market.rules import Standing, limit_period_of, month_key
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


def units_by_item(member_id: int, at: datetime) -> dict[tuple[int, LimitPeriod], int]:
    """Units of each item in the member's active orders placed in the current month, quarter and year, by (item,
    limit period). By the orders' placing instant, not the period key stored on them: an item's limit period may
    change (month to year), and the orders already placed in the new period count against it."""
    periods = {kind: limit_period_of(at, kind) for kind in LimitPeriod}
    placed, year = MarketOrder.placed_at, periods[LimitPeriod.YEAR]

    def units(period) -> sa.ColumnElement:
        inside = sa.and_(placed >= period.start, placed < period.end)
        return sa.func.sum(sa.case((inside, MarketOrder.quantity), else_=0))
    rows = db.session.execute(
        sa.select(MarketOrder.item_id, *(units(period) for period in periods.values()))
        .where(MarketOrder.member_id == member_id, MarketOrder.state.in_(ACTIVE_STATES),
               placed >= year.start, placed < year.end)  # the year holds its quarter and month
        .group_by(MarketOrder.item_id))
    return {(item_id, kind): int(count) for item_id, *counts in rows
            for kind, count in zip(periods, counts, strict=True)}


def standings(member_id: int, items: list[MarketItem], at: datetime) -> dict[int, Standing]:
    expiry = _expiry_params(member_id, at)
    balance = from_cents(core_execute(_spendable_statement(expiry is not None),
                                      {"member_id": member_id, **(expiry or {})}).scalar())
    month, units = redeemed_in_month(member_id, at), units_by_item(member_id, at)
    return {item.id: Standing(balance, month, units.get((item.id, LimitPeriod(item.limit_period)), 0))
            for item in items}


def standing_for(member_id: int, item: MarketItem, at: datetime) -> Standing:
    """``standings`` for one item in one statement: what an order is judged on."""
    expiry = _expiry_params(member_id, at)
    period = limit_period_of(at, item.limit_period)
    balance, month, units = core_execute(_standing_statement(expiry is not None), {
        "member_id": member_id, "month": month_key(at), "item_id": item.id,
        "period_start": period.start, "period_end": period.end, **(expiry or {})}).one()
    return Standing(from_cents(balance), from_cents(month), int(units))


def _expiry_params(member_id: int, at: datetime) -> dict | None:
    return unsettled_expiry_params((SubjectType.MEMBER.value, member_id), at)


@functools.cache
def _standing_statement(expiry: bool) -> sa.Select:
    member = sa.bindparam("member_id")
    units = sa.select(sa.func.coalesce(sa.func.sum(MarketOrder.quantity), 0)).where(
        MarketOrder.member_id == member, MarketOrder.item_id == sa.bindparam("item_id"),
        MarketOrder.placed_at >= sa.bindparam("period_start"), MarketOrder.placed_at < sa.bindparam("period_end"),
        MarketOrder.state.in_(ACTIVE_STATES))  # by placing instant, as units_by_item: the period may have changed
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
