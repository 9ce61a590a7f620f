"""Factories for 积分超市 tests: items, redeemable points to spend, principals of members and admins."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.corrections import adjust
from points_service.models import LedgerName, MarketItem, Member, Region, Role, SubjectType, User
from tests.factories import make_user

_seq = itertools.count(1)


def make_item(region: Region, **overrides) -> MarketItem:
    n = next(_seq)
    fields = {"name": f"兑换商品{n}", "price": Decimal(10), "stock": 5, "limit_per_member": None, "on_shelf": True,
              "description": "", "sold": 0}
    item = MarketItem(region_id=region.id, **{**fields, **overrides})
    db.session.add(item)
    db.session.flush()
    return item


def fund(member: Member, points, at: datetime | None = None) -> None:
    """Give a member redeemable points through the ledger's audited adjustment (commits)."""
    admin = db.session.get(User, _fund_admin_id())
    adjust(principal_for(admin), SubjectType.MEMBER, member.id, Decimal(points), "测试充值",
           ledger=LedgerName.REDEEMABLE, request_key=f"fund-{next(_seq)}", at=at)


def _fund_admin_id() -> int:
    user = db.session.query(User).filter_by(username="fund_admin").one_or_none()
    if user is None:
        user = make_user((Role.ADMIN, None), username="fund_admin")
        db.session.commit()
    return user.id


def principal_of(user: User):
    return principal_for(user)
