"""The monthly redemption report: per community of the admin's scopes, the month's orders that stand (placed or
picked up), their units and points, and how many were refunded."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import cents, db, from_cents
from points_service.domain.access import Principal, authorize, nodes_in_scope
from points_service.domain.market.standing import ACTIVE_STATES
from points_service.domain.periods import Period
from points_service.models import MarketOrder, Region, Role


@dataclass(frozen=True)
class CommunityMonth:
    community: str
    orders: int
    units: int
    points: Decimal
    refunded: int


def monthly_report(actor: Principal, month: Period) -> list[CommunityMonth]:
    """Communities by points redeemed, most first (ties by name)."""
    authorize(actor, "market.desk")
    active = MarketOrder.state.in_(ACTIVE_STATES)
    statement = (
        sa.select(Region.name, sa.func.count().filter(active), sa.func.coalesce(
            sa.func.sum(sa.case((active, MarketOrder.quantity), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((active, cents(MarketOrder.points)), else_=0)), 0),
            sa.func.count().filter(sa.not_(active)))
        .join(Region, Region.id == MarketOrder.community_id).where(MarketOrder.month_key == month.key)
        .group_by(Region.name))
    if not actor.is_admin:
        statement = statement.where(MarketOrder.community_id.in_(nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)))
    rows = [CommunityMonth(name, orders, int(units), from_cents(points), refunded)
            for name, orders, units, points, refunded in db.session.execute(statement)]
    return sorted(rows, key=lambda row: (-row.points, row.community))
