"""The monthly redemption report: per community of the admin's scopes, the month's orders that stand (placed or
picked up), their units and points, and how many were refunded."""

from __future__ import annotations

from collections import Counter
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
    community_id: int
    community: str  # its name
    label: str  # the name, with the community's code when another community of the report has the same name
    orders: int
    units: int
    points: Decimal
    refunded: int


def monthly_report(actor: Principal, month: Period) -> list[CommunityMonth]:
    """Communities by points redeemed, most first (ties by name, then id). Grouped by the community's id: names
    are not unique (two streets may each have a 北门社区)."""
    authorize(actor, "market.desk")
    active = MarketOrder.state.in_(ACTIVE_STATES)
    statement = (
        sa.select(Region.id, Region.name, Region.code, sa.func.count().filter(active), sa.func.coalesce(
            sa.func.sum(sa.case((active, MarketOrder.quantity), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((active, cents(MarketOrder.points)), else_=0)), 0),
            sa.func.count().filter(sa.not_(active)))
        .join(Region, Region.id == MarketOrder.community_id).where(MarketOrder.month_key == month.key)
        .group_by(Region.id, Region.name, Region.code))
    if not actor.is_admin:
        statement = statement.where(MarketOrder.community_id.in_(nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)))
    found = db.session.execute(statement).all()
    shared = {name for name, count in Counter(row.name for row in found).items() if count > 1}
    rows = [CommunityMonth(region_id, name, f"{name}（{code}）" if name in shared else name, orders, int(units),
                           from_cents(points), refunded)
            for region_id, name, code, orders, units, points, refunded in found]
    return sorted(rows, key=lambda row: (-row.points, row.community, row.community_id))
