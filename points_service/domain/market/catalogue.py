"""Keeping and reading the catalogue: admins of a community, street, district or the city keep the items
offered in their scope (each also to every community below); members see what is offered to theirs."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize, authorize_or_hide, nodes_in_scope
from points_service.domain.audit import audit
from points_service.domain.errors import ValidationFailed
from points_service.domain.market.errors import ItemNotFound, ItemUnavailable, StockUnlimited, StockWouldGoNegative
from points_service.domain.market.pictures import store_picture
from points_service.domain.market.rules import Standing, is_visible, limit_left, spendable
from points_service.domain.market.standing import standings
from points_service.domain.policy import policy_in_force
from points_service.domain.policy.model import RedemptionRule
from points_service.models import LimitPeriod, MarketItem, Member, Region, RegionLevel, Role, StockAdjustment

OFFERING_LEVELS = frozenset({RegionLevel.CITY, RegionLevel.DISTRICT, RegionLevel.STREET, RegionLevel.COMMUNITY})
EDITABLE = ("name", "description", "price", "limit_per_member", "limit_period", "visible_from", "visible_until",
            "on_shelf", "picture")


@dataclass(frozen=True)
class ItemDraft:
    region_id: int
    name: str
    price: Decimal
    description: str = ""
    stock: int | None = None  # None: unlimited (services)
    limit_per_member: int | None = None
    limit_period: LimitPeriod = LimitPeriod.MONTH
    visible_from: datetime | None = None
    visible_until: datetime | None = None
    on_shelf: bool = True


@dataclass(frozen=True)
class OfferedItem:
    """An item as a member sees it: whether he can afford one now and how many the limit still allows."""

    item: MarketItem
    affordable: bool
    limit_left: int | None


def _offering_region(region_id: int) -> Region:
    region = db.session.get(Region, region_id)
    if region is None or region.level not in OFFERING_LEVELS:
        raise ValidationFailed({"region_id": ["应为社区、街道、区县或全市"]})
    return region


def _check_window(visible_from, visible_until) -> None:
    if visible_from and visible_until and visible_until <= visible_from:
        raise ValidationFailed({"visible_until": ["下架时间应晚于上架时间"]})


def create_item(actor: Principal, draft: ItemDraft, picture: bytes | None = None) -> MarketItem:
    """A new item; with ``picture`` (an upload) checked and stored in the same use case, or nothing written."""
    region = _offering_region(draft.region_id)
    authorize(actor, "market.manage", region)
    _check_window(draft.visible_from, draft.visible_until)
    item = MarketItem(**{f.name: getattr(draft, f.name) for f in fields(draft)}, sold=0, created_by_id=actor.user_id)
    if picture is not None:
        item.picture = store_picture(picture)
    db.session.add(item)
    db.session.flush()
    audit("market.item_create", actor=actor, target=item, detail={"name": item.name, "price": str(item.price),
                                                                   "stock": item.stock, "region_id": region.id,
                                                                   "picture": item.picture})
    db.session.commit()
    return item


def offering_regions(actor: Principal) -> list[Region]:
    """The regions whose items this admin keeps (community, street, district, city levels), top down."""
    authorize(actor, "market.desk")
    statement = sa.select(Region).where(Region.level.in_(OFFERING_LEVELS)).order_by(Region.path)
    if not actor.is_admin:
        statement = statement.where(Region.id.in_(nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)))
    return list(db.session.scalars(statement.limit(2000)))


def item_for_admin(actor: Principal, item_id: int) -> MarketItem:
    item = db.session.get(MarketItem, item_id)
    if item is None:
        raise ItemNotFound()
    authorize_or_hide(actor, "market.manage", item.region, ItemNotFound())
    return item


def update_item(actor: Principal, item_id: int, changes: dict, picture: bytes | None = None) -> MarketItem:
    """Change an item's fields (not its region or stock); with ``picture`` also its picture, all or nothing."""
    item = item_for_admin(actor, item_id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed({name: ["不能修改此项"] for name in sorted(unknown)})
    _check_window(changes.get("visible_from", item.visible_from), changes.get("visible_until", item.visible_until))
    if picture is not None:
        changes = {**changes, "picture": store_picture(picture)}
    changed = {name: value for name, value in changes.items() if getattr(item, name) != value}
    if not changed:  # a form saved as it was: nothing to write or audit
        db.session.rollback()
        return item
    for name, value in changed.items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    audit("market.item_update", actor=actor, target=item, detail={k: str(v) for k, v in changed.items()})
    db.session.commit()
    return item


def set_picture(actor: Principal, item_id: int, content: bytes) -> MarketItem:
    """Check and store an uploaded picture as the item's (the old file stays: pages may still show it)."""
    item = item_for_admin(actor, item_id)
    item.picture, item.updated_at = store_picture(content), utcnow()
    audit("market.item_picture", actor=actor, target=item, detail={"picture": item.picture})
    db.session.commit()
    return item


def adjust_stock(actor: Principal, item_id: int, delta: int, reason: str) -> MarketItem:
    """Add (or with a negative delta, remove) units, in SQL so that concurrent orders are never overwritten."""
    item = item_for_admin(actor, item_id)
    if item.stock is None:
        raise StockUnlimited()
    if delta == 0:
        raise ValidationFailed({"delta": ["调整数量不能为 0"]})
    stock_after = db.session.scalar(
        sa.update(MarketItem).where(MarketItem.id == item.id, MarketItem.stock + delta >= 0)
        .values(stock=MarketItem.stock + delta, updated_at=utcnow()).returning(MarketItem.stock))
    if stock_after is None:
        db.session.rollback()
        raise StockWouldGoNegative()
    db.session.add(StockAdjustment(item_id=item.id, delta=delta, stock_after=stock_after, reason=reason,
                                   actor_id=actor.user_id))
    audit("market.stock_adjust", actor=actor, target=item, detail={"delta": delta, "stock_after": stock_after,
                                                                    "reason": reason})
    db.session.commit()
    db.session.refresh(item)
    return item


def admin_items(actor: Principal) -> sa.Select:
    """Items of the regions the admin covers, newest first."""
    authorize(actor, "market.desk")
    statement = sa.select(MarketItem).order_by(MarketItem.id.desc())
    if actor.is_admin:
        return statement
    return statement.where(MarketItem.region_id.in_(nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)))


def _visible(at: datetime) -> list:
    return [MarketItem.on_shelf, sa.or_(MarketItem.visible_from.is_(None), MarketItem.visible_from <= at),
            sa.or_(MarketItem.visible_until.is_(None), MarketItem.visible_until > at)]


def _member_of(actor: Principal) -> Member:
    authorize(actor, "market.order")
    return db.session.get(Member, actor.member_id)


def _offered(item: MarketItem, standing: Standing, rule: RedemptionRule) -> OfferedItem:
    return OfferedItem(item, affordable=item.price <= spendable(standing, rule),
                       limit_left=limit_left(item.limit_per_member, standing))


def offered_items(actor: Principal, at: datetime | None = None,
                  level: RegionLevel | None = None) -> list[OfferedItem]:
    """What is on offer to the member's community and every region above it, cheapest first; with ``level``
    only what the region of that level (his community, his street, ...) offers."""
    at = at or utcnow()
    member = _member_of(actor)
    statement = sa.select(MarketItem).where(MarketItem.region_id.in_(member.community.ancestor_ids), *_visible(at))
    if level is not None:
        statement = statement.join(Region, Region.id == MarketItem.region_id).where(Region.level == level)
    items = list(db.session.scalars(statement.order_by(MarketItem.price, MarketItem.id)))
    policy = policy_in_force(at)
    figures = standings(member.id, items, at)
    return [_offered(item, figures[item.id], policy.redemption) for item in items]


def offered_item(actor: Principal, item_id: int, at: datetime | None = None) -> OfferedItem:
    at = at or utcnow()
    member = _member_of(actor)
    item = find_offered(member, item_id, at)
    policy = policy_in_force(at)
    return _offered(item, standings(member.id, [item], at)[item.id], policy.redemption)


@functools.cache
def _item_with_community() -> sa.Select:
    community = aliased(Region, name="community")
    return (sa.select(MarketItem, community).join(community, community.id == sa.bindparam("community_id"))
            .where(MarketItem.id == sa.bindparam("item_id")))


def find_offered(member: Member, item_id: int, at: datetime) -> MarketItem:
    """The item if it is offered to this member now; 404 for one of another scope (not leaked), 409 off-shelf.
    One statement reads the item and the member's community (an order's hot path; the order keeps both)."""
    found = db.session.execute(_item_with_community(), {"item_id": item_id,
                                                        "community_id": member.community_id}).first()
    if found is not None:
        set_committed_value(member, "community", found[1])  # as loading his relationship would
    if found is None or found[0].region_id not in found[1].ancestor_ids:
        raise ItemNotFound()
    item = found[0]
    if not is_visible(item.on_shelf, item.visible_from, item.visible_until, at):
        raise ItemUnavailable()
    return item
