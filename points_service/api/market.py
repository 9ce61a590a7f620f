"""积分超市 (/shop): members browse and order with redeemable points; admins keep items, stock and pick-ups."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from flask import abort, send_file, url_for
from flask_smorest.fields import Upload

from points_service import ratelimit
from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, PointsField, RowId
from points_service.api.idempotency import client_key, idempotent
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import acting_member_required, authorize_first, current_principal, login_required
from points_service.domain.market import catalogue, orders
from points_service.domain.market.catalogue import ItemDraft
from points_service.domain.market.orders import MAX_QUANTITY, OrderRequest
from points_service.domain.market.pictures import MEDIA_TYPES, picture_path
from points_service.models import LimitPeriod, OrderState, RegionLevel

blp = Blueprint("market", __name__, description="积分超市：公益积分兑换商品与服务、取货、退还")

MAX_STOCK = 1_000_000
PRICE_RANGE = ma.validate.Range(min=Decimal("0.01"), max=Decimal(100_000), error="应在 {min}–{max} 之间")


def picture_url(name: str | None) -> str | None:
    return None if name is None else url_for("market.picture", name=name)


class ItemFields(ma.Schema):
    """What an admin writes about an item (PATCH: any of them)."""

    name = CleanString(max_length=60, metadata={"example": "环保购物袋"})
    description = CleanString(max_length=500, min_length=0, load_default="")
    price = PointsField(validate=PRICE_RANGE, metadata={"description": "兑换所需公益积分"})
    limit_per_member = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=1000),
                                         metadata={"description": "每人每个限购周期最多兑换件数；null 不限"})
    limit_period = ma.fields.Enum(LimitPeriod, by_value=True, metadata={"description": "限购周期"})
    visible_from = Instant(allow_none=True)
    visible_until = Instant(allow_none=True)
    on_shelf = ma.fields.Boolean(metadata={"description": "是否上架"})

    @ma.validates_schema
    def window(self, data, **_kwargs):
        start, end = data.get("visible_from"), data.get("visible_until")
        if start and end and end <= start:
            raise ma.ValidationError("下架时间应晚于上架时间", "visible_until")


class ItemCreateArgs(ItemFields):
    region_id = RowId(required=True, strict=True, metadata={"description": "社区、街道、区县或全市的区划编号"})
    name = CleanString(required=True, max_length=60, metadata={"example": "环保购物袋"})
    price = PointsField(required=True, validate=PRICE_RANGE)
    stock = ma.fields.Integer(strict=True, load_default=None, allow_none=True,
                              validate=ma.validate.Range(min=0, max=MAX_STOCK),
                              metadata={"description": "库存件数；null 表示不限（服务类）"})
    limit_per_member = ma.fields.Integer(strict=True, load_default=None, allow_none=True,
                                         validate=ma.validate.Range(min=1, max=1000))
    limit_period = ma.fields.Enum(LimitPeriod, by_value=True, load_default=LimitPeriod.MONTH)
    visible_from = Instant(load_default=None, allow_none=True)
    visible_until = Instant(load_default=None, allow_none=True)
    on_shelf = ma.fields.Boolean(load_default=True)

    @ma.post_load
    def to_draft(self, data, **_kwargs) -> ItemDraft:
        return ItemDraft(**data)


class ItemPatchArgs(ItemFields):
    description = CleanString(max_length=500, min_length=0)


class StockArgs(ma.Schema):
    delta = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=-MAX_STOCK, max=MAX_STOCK),
                              metadata={"description": "增加（正数）或减少（负数）的件数"})
    reason = CleanString(required=True, max_length=200)


class PictureArgs(ma.Schema):
    picture = Upload(required=True, metadata={"description": "JPEG/PNG/WebP，不超过 2 MB，宽高 64–4096 像素"})


class OrderArgs(ma.Schema):
    item_id = RowId(required=True, strict=True)
    quantity = ma.fields.Integer(strict=True, load_default=1, validate=ma.validate.Range(min=1, max=MAX_QUANTITY))


class ReasonArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200)


class PickupArgs(ma.Schema):
    code = CleanString(required=True, max_length=200, metadata={
        "description": "取货码（不区分大小写），或扫码枪读出的整段内容（…?code=7KX2QD、pickup:7KX2QD、…/7KX2QD）",
        "example": "7KX2QD"})


OFFER_SCOPES = {"all": None, "community": RegionLevel.COMMUNITY, "street": RegionLevel.STREET,
                "district": RegionLevel.DISTRICT, "city": RegionLevel.CITY}


class OfferedItemArgs(PageArgs):
    scope = ma.fields.String(
        load_default="all", validate=ma.validate.OneOf(list(OFFER_SCOPES), error="应为 {choices} 之一"),
        metadata={"description": "提供商品的层级：all（默认，全部）、community（本社区）、street（本街道）、"
                                 "district（本区县）、city（全市）"})


class OrderListArgs(PageArgs):
    state = ma.fields.Enum(OrderState, by_value=True, load_default=None)


class ItemSchema(ma.Schema):
    id = ma.fields.Integer()
    region_id = ma.fields.Integer()
    region_name = ma.fields.String(attribute="region.name")
    name = ma.fields.String()
    description = ma.fields.String()
    picture_url = ma.fields.Function(lambda item: picture_url(item.picture), allow_none=True)
    price = PointsField()
    stock = ma.fields.Integer(allow_none=True, metadata={"description": "null 表示不限"})
    sold = ma.fields.Integer(metadata={"description": "已兑换件数（待取货与已取货）"})
    limit_per_member = ma.fields.Integer(allow_none=True)
    limit_period = ma.fields.Enum(LimitPeriod, by_value=True)
    visible_from = Instant(allow_none=True)
    visible_until = Instant(allow_none=True)
    on_shelf = ma.fields.Boolean()


class OfferedItemSchema(ma.Schema):
    id = ma.fields.Integer(attribute="item.id")
    name = ma.fields.String(attribute="item.name")
    description = ma.fields.String(attribute="item.description")
    region_name = ma.fields.String(attribute="item.region.name", metadata={"description": "提供商品的社区或上级区划"})
    scope = ma.fields.String(attribute="item.region.level",
                             metadata={"description": "提供商品的层级：community、street、district 或 city"})
    picture_url = ma.fields.Function(lambda offered: picture_url(offered.item.picture), allow_none=True)
    price = PointsField(attribute="item.price")
    stock = ma.fields.Integer(attribute="item.stock", allow_none=True, metadata={"description": "null 表示不限"})
    limit_per_member = ma.fields.Integer(attribute="item.limit_per_member", allow_none=True)
    limit_period = ma.fields.Enum(LimitPeriod, by_value=True, attribute="item.limit_period")
    visible_until = Instant(attribute="item.visible_until", allow_none=True)
    affordable = ma.fields.Boolean(metadata={"description": "按当前余额、最低保留余额与本月上限能否兑换一件"})
    limit_left = ma.fields.Integer(allow_none=True, metadata={"description": "本限购周期内还可兑换的件数；null 不限"})


class OrderSchema(ma.Schema):
    id = ma.fields.Integer()
    item_id = ma.fields.Integer()
    item_name = ma.fields.String(attribute="item.name")
    member_id = ma.fields.Integer()
    member_name = ma.fields.String(attribute="member.name")
    community_name = ma.fields.String(attribute="community.name")
    quantity = ma.fields.Integer()
    points = PointsField()
    state = ma.fields.Enum(OrderState, by_value=True)
    pickup_code = ma.fields.String(attribute="open_code", allow_none=True,
                                   metadata={"description": "待取货时的取货码；取货、取消或过期后为 null"})
    placed_at = Instant()
    pickup_deadline = Instant()
    closed_at = Instant(allow_none=True)
    close_reason = ma.fields.String()


def _list_page(values: list, page: int, page_size: int) -> dict:
    start = (page - 1) * page_size
    return {"items": values[start:start + page_size], "page": page, "page_size": page_size, "total": len(values)}


@blp.route("/shop/items")
@login_required
@blp.arguments(OfferedItemArgs, location="query")
@blp.response(200, page_of(OfferedItemSchema))
def offered_items(args):
    """党员：本社区及上级区划提供的在架商品（scope 按提供层级筛选；affordable 表示能否兑换，limit_left 为剩余件数）"""
    level = OFFER_SCOPES[args.pop("scope")]
    return _list_page(catalogue.offered_items(current_principal(), level=level), **args)


@blp.route("/shop/items/<int:item_id>")
@login_required
@blp.response(200, OfferedItemSchema)
def offered_item(item_id):
    """党员：商品详情（404 item_not_found；已下架 409 item_unavailable）"""
    return catalogue.offered_item(current_principal(), item_id)


@blp.route("/shop/orders", methods=["POST"])
@acting_member_required
@idempotent
@blp.arguments(OrderArgs)
@blp.response(201, OrderSchema)
@blp.alt_response(409, description="out_of_stock / limit_reached / monthly_ceiling_reached / item_unavailable"
                                   " / order_in_progress / member_inactive")
@blp.alt_response(422, description="insufficient_points")
@blp.alt_response(503, description="pickup_code_exhausted (retry)")
def place_order(args):
    """党员下单兑换：同一事务内扣减公益积分（先到期的先用）并占用库存；可带 Idempotency-Key 防重复下单"""
    return orders.place_order(current_principal(), OrderRequest(**args, request_key=client_key()))


@blp.route("/me/orders")
@login_required
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, page_of(OrderSchema))
def own_orders(args):
    """党员：我的兑换订单，最新的在前"""
    return paginate(orders.own_orders(current_principal(), args.pop("state")), **args)


@blp.route("/shop/orders/<int:order_id>/cancel", methods=["POST"])
@login_required
@blp.response(200, OrderSchema)
def cancel_own_order(order_id):
    """党员：取货前取消订单，积分以冲正记录退还（保留原到期时间），库存退回"""
    return orders.cancel_own_order(current_principal(), order_id)


@blp.route("/shop/pickups", methods=["POST"])
@login_required
@authorize_first("market.hand_over")
@blp.arguments(PickupArgs)
@blp.response(200, OrderSchema)
def pick_up(args):
    """社区管理员：凭取货码核销交付（取货码错误或不在管理范围内 404 pickup_code_invalid）"""
    return orders.pick_up(current_principal(), args["code"])


@blp.route("/shop/admin/orders")
@login_required
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, page_of(OrderSchema))
def order_queue(args):
    """管理员：本管理范围的订单队列（默认待取货，先下单的在前）"""
    state = args.pop("state") or OrderState.PLACED
    return paginate(orders.order_queue(current_principal(), state), **args)


@blp.route("/shop/admin/orders/<int:order_id>/cancel", methods=["POST"])
@login_required
@authorize_first("market.hand_over")
@blp.arguments(ReasonArgs)
@blp.response(200, OrderSchema)
def cancel_by_admin(args, order_id):
    """管理员：填写原因取消订单并退还积分"""
    return orders.cancel_by_admin(current_principal(), order_id, args["reason"])


@blp.route("/shop/admin/items")
@login_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ItemSchema))
def admin_items(args):
    """管理员：本管理范围的商品（含下架的），含库存与已兑换件数"""
    return paginate(catalogue.admin_items(current_principal()), **args)


@blp.route("/shop/items", methods=["POST"])
@login_required
@authorize_first("market.manage")
@blp.arguments(ItemCreateArgs)
@blp.response(201, ItemSchema)
def create_item(draft):
    """管理员：在本社区（街道、区县、全市管理员：本范围）上架商品或服务"""
    return catalogue.create_item(current_principal(), draft)


@blp.route("/shop/items/<int:item_id>", methods=["PATCH"])
@login_required
@authorize_first("market.manage")
@blp.arguments(ItemPatchArgs)
@blp.response(200, ItemSchema)
def update_item(changes, item_id):
    """管理员：修改商品信息、兑换窗口、限购或上下架（库存请用库存调整接口）"""
    return catalogue.update_item(current_principal(), item_id, changes)


@blp.route("/shop/items/<int:item_id>/stock", methods=["POST"])
@login_required
@authorize_first("market.manage")
@blp.arguments(StockArgs)
@blp.response(200, ItemSchema)
def adjust_stock(args, item_id):
    """管理员：调整库存（留痕；调整后库存不能小于 0）"""
    return catalogue.adjust_stock(current_principal(), item_id, args["delta"], args["reason"])


@blp.route("/shop/items/<int:item_id>/picture", methods=["POST"])
@login_required
@authorize_first("market.manage")
@ratelimit.limit("RATELIMIT_UPLOAD_PER_USER", ratelimit.by_account)
@blp.arguments(PictureArgs, location="files")
@blp.response(200, ItemSchema)
def upload_picture(files, item_id):
    """管理员：上传商品图片（multipart/form-data 的 picture 字段；类型、大小、宽高不符 422 picture_invalid）"""
    return catalogue.set_picture(current_principal(), item_id, files["picture"].read())


@blp.route("/shop/pictures/<name>")
@blp.alt_response(200, schema={"type": "string", "format": "binary"}, content_type="image/jpeg", description="图片")
@blp.alt_response(200, schema={"type": "string", "format": "binary"}, content_type="image/png", description="图片")
@blp.alt_response(200, schema={"type": "string", "format": "binary"}, content_type="image/webp", description="图片")
def picture(name):
    """商品图片（公开，文件名随机；不套信封）"""
    path = picture_path(name)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=MEDIA_TYPES[path.suffix.lstrip(".")], max_age=86400, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["Content-Disposition"] = "inline"
    return response
