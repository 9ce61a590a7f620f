"""The compiled dumper gives exactly what marshmallow gives, and refuses the schemas where it could not."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import marshmallow as ma
import pytest

from points_service.api.boards import BoardItemSchema, LeaderboardSchema
from points_service.api.dumping import CompiledList, compiled_dumper
from points_service.models import OrgKind

REACHED = datetime(2026, 9, 30, 15, 30, tzinfo=UTC)  # 23:30 in Asia/Shanghai: the +08:00 text is checked too

MEMBER_ITEMS = [
    {"rank": 1, "subject": {"id": 7, "name": "李·建国", "hidden": False,
                            "organization": {"id": 3, "name": "财政局第一党支部"}},
     "points": Decimal("12.50"), "value": Decimal("12.50"), "reached_at": REACHED},
    {"rank": 2, "subject": {"id": 8, "name": "王𠮷", "hidden": False, "organization": None},
     "points": Decimal(9), "value": Decimal(9), "reached_at": None},
    {"rank": 2, "subject": {"id": None, "name": "党员（已隐藏）", "hidden": True, "organization": None},
     "points": Decimal("-0.01"), "value": Decimal("-0.01"), "reached_at": REACHED},
]
ORGANIZATION_ITEMS = [
    {"rank": 1, "subject": {"id": 2, "name": "市财政局党委", "kind": OrgKind.DEPARTMENT, "hidden": False},
     "points": Decimal(40), "value": Decimal("0.6667"), "reached_at": REACHED,
     "members": {"count": 3, "points": Decimal("20.25"), "participants": 2}},
    {"rank": 2, "subject": {"id": 5, "name": "市教育局党委", "kind": OrgKind.DEPARTMENT, "hidden": False},
     "points": Decimal(0), "value": Decimal(0), "reached_at": None,
     "members": {"count": 0, "points": Decimal(0), "participants": 0}},
]


@pytest.mark.parametrize("items", [MEMBER_ITEMS, ORGANIZATION_ITEMS], ids=["members", "organizations"])
def test_a_compiled_board_item_equals_marshmallows_dump_of_it(items):
    dump = compiled_dumper(BoardItemSchema())
    # repr, not ==: Decimal(9) == 9, but the schema turns whole points into ints; repr also pins the key order
    assert repr([dump(item) for item in items]) == repr(BoardItemSchema(many=True).dump(items))


def test_the_leaderboard_schema_dumps_its_items_as_a_plain_list_would():
    class PlainLeaderboard(LeaderboardSchema):
        items = ma.fields.List(ma.fields.Nested(BoardItemSchema))

    page = {"items": MEMBER_ITEMS, "total": 3, "page": 1, "page_size": 50, "me": None, "board": "standing:all",
            "period": "standing", "scope": "all", "label": "党员本人积分"}
    assert repr(LeaderboardSchema().dump(page)) == repr(PlainLeaderboard().dump(page))
    assert LeaderboardSchema().dump({**page, "items": []})["items"] == []


class Hooked(ma.Schema):
    name = ma.fields.String()

    @ma.post_dump
    def shout(self, data, **_kwargs):
        return {**data, "name": data["name"].upper()}


@pytest.mark.parametrize("schema", [
    Hooked(),
    ma.Schema.from_dict({"name": ma.fields.String(dump_default="无名")})(),
    ma.Schema.from_dict({"name": ma.fields.String(attribute="full_name")})(),
    ma.Schema.from_dict({"name": ma.fields.Function(lambda obj: obj["a"])})(),
    ma.Schema.from_dict({"inner": ma.fields.Nested(Hooked)})(),
], ids=["hook", "dump default", "renamed attribute", "reads the object", "nested hook"])
def test_schemas_it_could_not_dump_the_same_way_are_refused(schema):
    with pytest.raises(TypeError):
        compiled_dumper(schema)


def test_a_compiled_list_needs_a_nested_schema():
    schema = ma.Schema.from_dict({"names": CompiledList(ma.fields.String())})()
    with pytest.raises(TypeError):
        schema.dump({"names": ["a"]})
