"""Keeping the catalogue: an item created or edited together with its picture is all or nothing, the regions an
admin may offer items in follow his grants, and a member's catalogue narrows to one offering level."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from PIL import Image

from points_service.db import db, utcnow
from points_service.domain.errors import Forbidden, ValidationFailed
from points_service.domain.market.catalogue import (
    ItemDraft,
    create_item,
    offered_items,
    offering_regions,
    update_item,
)
from points_service.domain.market.pictures import picture_path
from points_service.models import AuditEntry, MarketItem, RegionLevel, Role
from tests.factories import make_user, make_world
from tests.factories.market import make_item, principal_of


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), (10, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def world(app):
    world = make_world()
    world["users"]["street_admin"] = make_user((Role.COMMUNITY_ADMIN, world["street"].id), username="street_admin")
    db.session.commit()
    world["p"] = {name: principal_of(user) for name, user in world["users"].items()}
    return world


def items() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(MarketItem))


def test_an_item_created_with_a_picture_stores_the_checked_file(world):
    item = create_item(world["p"]["community_admin"], ItemDraft(world["north"].id, "党徽", Decimal(8)), png())
    assert picture_path(item.picture).read_bytes() == png()


def test_a_bad_picture_or_window_leaves_no_item_behind(world):
    with pytest.raises(ValidationFailed) as bad_picture:
        create_item(world["p"]["community_admin"], ItemDraft(world["north"].id, "党徽", Decimal(8)), b"not a picture")
    assert bad_picture.value.code == "picture_invalid"
    start = utcnow()
    with pytest.raises(ValidationFailed):
        create_item(world["p"]["community_admin"], ItemDraft(world["north"].id, "党徽", Decimal(8), visible_from=start,
                                                             visible_until=start - timedelta(days=1)), png())
    assert items() == 0


def test_an_edit_with_a_bad_picture_changes_nothing(world):
    item = make_item(world["north"], name="党徽")
    db.session.commit()
    with pytest.raises(ValidationFailed):
        update_item(world["p"]["community_admin"], item.id, {"name": "改名"}, b"GIF89a")
    db.session.expire_all()
    assert (db.session.get(MarketItem, item.id).name, db.session.get(MarketItem, item.id).picture) == ("党徽", None)
    updated = update_item(world["p"]["community_admin"], item.id, {"name": "改名"}, png())
    assert updated.name == "改名" and picture_path(updated.picture) is not None


def test_an_edit_audits_only_what_changed_and_an_unchanged_save_writes_nothing(world):
    item = make_item(world["north"], name="党徽")
    db.session.commit()
    updated_at = item.updated_at

    def audit_rows():
        return db.session.execute(sa.select(AuditEntry.detail).where(AuditEntry.action == "market.item_update")).all()
    update_item(world["p"]["community_admin"], item.id, {"name": "党徽", "price": item.price})
    assert audit_rows() == [] and db.session.get(MarketItem, item.id).updated_at == updated_at
    update_item(world["p"]["community_admin"], item.id, {"name": "党徽", "price": item.price + 1})
    assert [row.detail for row in audit_rows()] == [{"price": str(item.price)}]


def test_the_regions_an_admin_offers_items_in_follow_his_grants(world):
    assert [r.name for r in offering_regions(world["p"]["community_admin"])] == ["北门社区"]
    assert {r.name for r in offering_regions(world["p"]["street_admin"])} == {"古槐街道", "北门社区", "南门社区"}
    assert len(offering_regions(world["p"]["admin"])) == 5  # city, district, street, two communities; no grids
    with pytest.raises(Forbidden):
        offering_regions(world["p"]["alice"])


def test_a_members_catalogue_narrows_to_one_offering_level(world):
    for region in ("north", "street", "district", "city", "south"):
        make_item(world[region], name=f"{region} item")
    db.session.commit()
    alice = world["p"]["alice"]
    assert {o.item.name for o in offered_items(alice)} == {"north item", "street item", "district item", "city item"}
    assert [o.item.name for o in offered_items(alice, level=RegionLevel.DISTRICT)] == ["district item"]
    assert [o.item.name for o in offered_items(alice, level=RegionLevel.COMMUNITY)] == ["north item"]
