"""积分超市: items offered in a scope, members' orders, and the audit rows of orders and stock.

Invariants enforced by the database, not only by Python:
- stock never goes negative (CHECK stock >= 0; NULL means unlimited, for services);
- a member's retried order (same request key) is one order (UNIQUE member_id, request_key);
- an open order's pick-up code is unique (``open_code`` is set while the order is placed, NULL after);
- a refund points at its order's redemption entry once (the ledger's UNIQUE reverses_id), and an order's
  redemption entry belongs to that order alone (UNIQUE redemption_entry_id);
- order events and stock adjustments are append-only.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points_service.db import Points, UTCDateTime, db, enum_column, utcnow
from points_service.models.append_only import forbid_update_and_delete
from points_service.models.people import Member
from points_service.models.structure import Region


class LimitPeriod(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class OrderState(enum.StrEnum):
    PLACED = "placed"  # points debited, stock reserved, waiting for pick-up
    PICKED_UP = "picked_up"  # handed over (terminal)
    CANCELLED = "cancelled"  # by the member or an admin, refunded (terminal)
    EXPIRED = "expired"  # not collected within the policy's window, refunded by the job (terminal)


OPEN_ORDER_STATES = frozenset({OrderState.PLACED})


class MarketItem(db.Model):
    __tablename__ = "market_items"
    __table_args__ = (
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint("sold >= 0", name="sold_not_negative"),
        sa.CheckConstraint("limit_per_member IS NULL OR limit_per_member >= 1", name="limit_positive"),
        sa.CheckConstraint("visible_until IS NULL OR visible_from IS NULL OR visible_until > visible_from",
                           name="visible_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"), index=True)  # offered here and below
    name: Mapped[str] = mapped_column(sa.String(60))
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    picture: Mapped[str | None] = mapped_column(sa.String(80))  # a stored upload's file name
    price: Mapped[Decimal] = mapped_column(Points)
    stock: Mapped[int | None] = mapped_column()  # None: unlimited
    sold: Mapped[int] = mapped_column(default=0)  # units in placed or picked-up orders
    limit_per_member: Mapped[int | None] = mapped_column()  # units per member per limit period; None: no limit
    limit_period: Mapped[LimitPeriod] = mapped_column(enum_column(LimitPeriod, "limit_period", 8),
                                                      default=LimitPeriod.MONTH)
    visible_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    visible_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_shelf: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship()


class MarketOrder(db.Model):
    __tablename__ = "market_orders"
    __table_args__ = (
        sa.UniqueConstraint("member_id", "request_key", name="uq_market_orders_member_request"),
        sa.CheckConstraint("quantity >= 1", name="quantity_positive"),
        sa.CheckConstraint("points > 0", name="points_positive"),
        sa.CheckConstraint("(state = 'placed') = (open_code IS NOT NULL)", name="open_code_while_placed"),
        sa.Index("ix_market_orders_member_item", "member_id", "item_id", "limit_period_key"),
        sa.Index("ix_market_orders_state_deadline", "state", "pickup_deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("market_items.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"))
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("regions.id"), index=True)  # the member's, at order
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    request_key: Mapped[str | None] = mapped_column(sa.String(64))
    quantity: Mapped[int] = mapped_column()
    points: Mapped[Decimal] = mapped_column(Points)  # price × quantity, debited
    state: Mapped[OrderState] = mapped_column(enum_column(OrderState, "state"), default=OrderState.PLACED)
    pickup_code: Mapped[str] = mapped_column(sa.String(8))
    open_code: Mapped[str | None] = mapped_column(sa.String(8), unique=True)
    # e.g. 2026-11: the limit period in force when placed (the limit counts by placed_at: the item's may change)
    limit_period_key: Mapped[str] = mapped_column(sa.String(12))
    month_key: Mapped[str] = mapped_column(sa.String(12))  # for the policy's monthly ceiling and the report
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pickup_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    close_reason: Mapped[str] = mapped_column(sa.String(200), default="")
    redemption_entry_id: Mapped[int | None] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("ledger_entries.id"), unique=True)
    refund_entry_id: Mapped[int | None] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("ledger_entries.id"), unique=True)

    item: Mapped[MarketItem] = relationship()
    member: Mapped[Member] = relationship()
    community: Mapped[Region] = relationship()


class MarketOrderEvent(db.Model):
    """One row per transition of an order (placed, picked up, cancelled, expired), as approvals keep."""

    __tablename__ = "market_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("market_orders.id"), index=True)
    from_state: Mapped[OrderState | None] = mapped_column(enum_column(OrderState, "from_state"))
    to_state: Mapped[OrderState] = mapped_column(enum_column(OrderState, "to_state"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # None: the expiry job
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockAdjustment(db.Model):
    """An admin's change of an item's stock, with the stock it left."""

    __tablename__ = "market_stock_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("market_items.id"), index=True)
    delta: Mapped[int] = mapped_column()
    stock_after: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(200))
    actor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


forbid_update_and_delete(MarketOrderEvent.__table__)
forbid_update_and_delete(StockAdjustment.__table__)
