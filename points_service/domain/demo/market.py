"""The demo's 积分超市: two offers in every community and one city-wide, so that the shop's pages, an order and
the console's desk have something to show (the demo's history credits redeemable points with every service).
Picked without drawing from the city's random stream, so the earlier steps' city stays the same."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db
from points_service.models import LimitPeriod, MarketItem, Region, RegionLevel

# name, price, stock (None: a service without stock), units per member a month, where and how
COMMUNITY_OFFERS = (
    ("洗衣液（2 kg）", Decimal(20), 30, 2, "凭取货码到社区党群服务中心领取"),
    ("义剪服务（一次）", Decimal(10), None, 1, "每月第一个周六上午，社区活动室"),
)
CITY_OFFERS = (("红色教育基地参观券", Decimal(50), 100, 1, "市级党员教育基地，凭取货码到所在社区领取"),)


def seed_market(city) -> None:
    """Add the offers (flushes; the demo's one commit ends the seeding)."""
    root = db.session.scalar(sa.select(Region).where(Region.level == RegionLevel.CITY))
    offers = [(root, offer) for offer in CITY_OFFERS]
    offers += [(community, offer) for community in city.communities for offer in COMMUNITY_OFFERS]
    db.session.add_all(MarketItem(region_id=region.id, name=name, price=price, stock=stock, sold=0,
                                  limit_per_member=limit, limit_period=LimitPeriod.MONTH, description=description)
                       for region, (name, price, stock, limit, description) in offers)
    db.session.flush()
