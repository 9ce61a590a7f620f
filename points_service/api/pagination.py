"""Page arguments and the paged list shape ``{"items", "page", "page_size", "total"}``."""

from __future__ import annotations

from functools import cache

import marshmallow as ma
import sqlalchemy as sa

from points_service.db import db

MAX_PAGE_SIZE = 100


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1),
                                  metadata={"description": f"at most {MAX_PAGE_SIZE}; larger values are capped"})

    @ma.post_load
    def cap_page_size(self, data, **_kwargs):
        data["page_size"] = min(data["page_size"], MAX_PAGE_SIZE)
        return data


@cache
def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(name, (ma.Schema,), {
        "items": ma.fields.List(ma.fields.Nested(item_schema)),
        "page": ma.fields.Integer(),
        "page_size": ma.fields.Integer(),
        "total": ma.fields.Integer(),
    })


def paginate(statement: sa.Select, page: int, page_size: int, **_ignored) -> dict:
    total = db.session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery()))
    items = db.session.scalars(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": items, "page": page, "page_size": page_size, "total": total}
