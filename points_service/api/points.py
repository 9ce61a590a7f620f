"""Points of members and organizations, their ledgers, and admin corrections."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, ItemName, PeriodKey, PointsField, RowId
from points_service.api.idempotency import idempotent, request_key
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.ledger import corrections, reading
from points_service.domain.periods import PeriodKind
from points_service.models import EntryKind, LedgerName, SourceType, SubjectType

blp = Blueprint("points", __name__, description="积分与台账")


def _not_a_day(period) -> None:
    """Totals are kept for years, halves, quarters and months: a day's figures would be none of them."""
    if period.kind == PeriodKind.DAY:
        raise ma.ValidationError("应为年、半年、季度或月份，如 2025 或 2025-Q4")


class PeriodArgs(ma.Schema):
    period = PeriodKey(load_default=None, validate=_not_a_day,
                       metadata={"description": "2026 / 2026-H2 / 2026-Q3 / 2026-11; default this year"})


class LedgerArgs(PageArgs):
    period = PeriodKey(load_default=None)
    ledger = ma.fields.Enum(LedgerName, by_value=True, load_default=None)


class AssessmentSchema(ma.Schema):
    earned = PointsField()
    deducted = PointsField()
    net = PointsField()


class ItemPointsSchema(ma.Schema):
    item_code = ma.fields.String()
    name = ma.fields.String()
    points = PointsField()
    count = ma.fields.Integer()


class PointsSchema(ma.Schema):
    period = PeriodKey()
    assessment = ma.fields.Nested(AssessmentSchema)
    standing = PointsField()
    redeemable = PointsField()
    by_item = ma.fields.List(ma.fields.Nested(ItemPointsSchema))
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class RollupSchema(ma.Schema):
    label = ma.fields.String()
    member_count = ma.fields.Integer()
    participating_members = ma.fields.Integer()
    participation_rate = ma.fields.Decimal(allow_none=True, as_string=False)
    total_points = PointsField()
    per_capita_points = PointsField(allow_none=True)


class OrganizationPointsSchema(PointsSchema):
    members = ma.fields.Nested(RollupSchema)


class MarketItemRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    order_id = ma.fields.Integer()


class EntrySchema(ma.Schema):
    id = ma.fields.Integer()
    ledger = ma.fields.Enum(LedgerName, by_value=True)
    kind = ma.fields.Enum(EntryKind, by_value=True)
    item_code = ma.fields.String()
    item_name = ItemName(dump_only=True)
    points = PointsField()
    points_requested = PointsField()
    capped_by = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    policy_version = ma.fields.Integer(allow_none=True)
    source_type = ma.fields.Enum(SourceType, by_value=True)
    source_id = ma.fields.String()
    reverses_id = ma.fields.Integer(allow_none=True)
    corrects_period = ma.fields.String(allow_none=True, metadata={"description": "调整所更正的期间"})
    occurred_at = Instant()
    credited_at = Instant()
    market_item = ma.fields.Nested(MarketItemRefSchema, allow_none=True, metadata={
        "description": "积分超市兑换与退还记录：所兑换的商品（党员台账）"})


class AdjustmentArgs(ma.Schema):
    subject_type = ma.fields.Enum(SubjectType, by_value=True, required=True)
    subject_id = RowId(required=True, strict=True)
    points = PointsField(required=True)
    ledger = ma.fields.Enum(LedgerName, by_value=True, load_default=LedgerName.ASSESSMENT)
    reason = CleanString(required=True, max_length=200)
    period = PeriodKey(load_default=None, validate=_not_a_day, metadata={
        "description": "所更正的过去期间（如 2025、2025-Q4）：该年度的年度考核与人事导出将其列为该年的更正",
        "example": "2025-Q4"})


class ReverseArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200)


@blp.route("/members/<int:member_id>/points")
@login_required
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, PointsSchema)
def member_points(args, member_id):
    """党员积分：本期考核积分、活跃指数、公益积分余额与分项"""
    return reading.member_points(current_principal(), member_id, args["period"])


@blp.route("/members/<int:member_id>/ledger")
@login_required
@blp.arguments(LedgerArgs, location="query")
@blp.response(200, page_of(EntrySchema))
def member_ledger(args, member_id):
    """党员积分台账"""
    statement = reading.ledger_page(current_principal(), SubjectType.MEMBER, member_id,
                                    args.pop("period"), args.pop("ledger"))
    return reading.attach_market_items(paginate(statement, **args))


@blp.route("/organizations/<int:org_id>/points")
@login_required
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, OrganizationPointsSchema)
def organization_points(args, org_id):
    """组织积分，另附本组织党员积分汇总（分开标注）"""
    return reading.organization_points(current_principal(), org_id, args["period"])


@blp.route("/organizations/<int:org_id>/ledger")
@login_required
@blp.arguments(LedgerArgs, location="query")
@blp.response(200, page_of(EntrySchema))
def organization_ledger(args, org_id):
    """组织积分台账"""
    statement = reading.ledger_page(current_principal(), SubjectType.ORGANIZATION, org_id,
                                    args.pop("period"), args.pop("ledger"))
    return paginate(statement, **args)


@blp.route("/adjustments", methods=["POST"])
@login_required
@authorize_first("ledger.correct")
@idempotent
@blp.arguments(AdjustmentArgs)
@blp.response(201, EntrySchema)
def adjust(args):
    """管理员积分调整（留痕审计）；可带 Idempotency-Key 以防重复提交"""
    return corrections.adjust(current_principal(), args["subject_type"], args["subject_id"], args["points"],
                              args["reason"], ledger=args["ledger"], request_key=request_key(),
                              period=args["period"])


@blp.route("/ledger/<int:entry_id>/reverse", methods=["POST"])
@login_required
@authorize_first("ledger.correct")
@blp.arguments(ReverseArgs)
@blp.response(201, EntrySchema)
def reverse(args, entry_id):
    """冲正一条积分记录（写入冲正记录，原记录不变；重复冲正，或冲正记录、积分超市订单记录、衰减清零过期记录返回 409）"""
    return corrections.reverse_entry(current_principal(), entry_id, args["reason"])
