"""The world the API fuzzer runs in: the small city of ``make_world`` plus a stored policy, ledger entries,
积分超市 items and a picture, activities, a submitted record waiting for approval, a settled year — so the low
ids a fuzzer tries name rows."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

from PIL import Image

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.market.catalogue import set_picture
from points_service.models import ActivityStatus, SubjectType
from tests.factories import make_world
from tests.factories.activities import make_activity
from tests.factories.annual import YEAR, settled
from tests.factories.boards import entry
from tests.factories.ledger import install_policy
from tests.factories.market import fund, make_item
from tests.factories.records import make_proposal, self_report


def make_fuzz_world() -> dict:
    world = make_world()
    install_policy()
    for subject, points in ((world["alice"], 12), (world["bob"], 7), (world["carol"], -2)):
        entry(subject, points)
    entry(world["fin1"], 30, subject_type=SubjectType.ORGANIZATION)
    world["items"] = [make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=3),
                      make_item(world["street"], name="义务理发", price=Decimal(5), stock=None, limit_per_member=1)]
    now = utcnow()
    world["activities"] = [make_activity(world["north"], now - timedelta(minutes=30)),
                           make_activity(world["north"], now + timedelta(days=2), status=ActivityStatus.PUBLISHED)]
    db.session.commit()
    world["activities"].append(make_proposal(world["north"], world["fin1"]))
    fund(world["alice"], 40)
    world["record"] = self_report(world["users"]["alice"])
    db.session.commit()
    world["picture"] = set_picture(principal_for(world["users"]["admin"]), world["items"][0].id, png()).picture
    world["settlement"] = settled(world)
    world["year"] = YEAR
    return world


def png(width: int = 64, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()
