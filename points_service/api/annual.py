"""Annual settlement and HR exports: settle a year (admins), read its settlement, and pull the frozen
scores as JSON pages, CSV (UTF-8 with BOM) or XLSX — streamed, never built in memory."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import Instant, PointsField, RowId
from points_service.api.pagination import PageArgs, page_of
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.db import reads_without_transaction
from points_service.domain.annual import settlement as annual
from points_service.domain.exports import annual as rows
from points_service.downloads import XLSX_MIME, send_annual_export
from points_service.models import SubjectType

blp = Blueprint("annual", __name__, description="年度结算与人事导出")
FILE = {"type": "string", "format": "binary"}


class AnnualScoresArgs(PageArgs):
    subject = ma.fields.Enum(SubjectType, by_value=True, load_default=SubjectType.MEMBER,
                             metadata={"description": "member 党员 | organization 部门党组织"})
    organization_id = RowId(load_default=None,
                            metadata={"description": "只导出该组织（须在本人人事权限内）"})
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv", "xlsx"]),
                              metadata={"description": "json 分页 | csv（UTF-8 BOM）| xlsx"})


class AnnualSettlementSchema(ma.Schema):
    year = ma.fields.Integer()
    status = ma.fields.String()
    cutoff_at = Instant()
    policy_version = ma.fields.Integer()
    settled_by_id = ma.fields.Integer(allow_none=True)
    settled_at = Instant()
    member_count = ma.fields.Integer()
    organization_count = ma.fields.Integer()
    checksum = ma.fields.String()


class AnnualRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class AnnualSubjectSchema(AnnualRefSchema):
    code = ma.fields.String(allow_none=True)


class AnnualItemSchema(ma.Schema):
    item_code = ma.fields.String()
    name = ma.fields.String()
    points = PointsField()
    count = ma.fields.Integer()


class GradeReasonSchema(ma.Schema):
    code = ma.fields.String()
    message = ma.fields.String()


class CorrectionEntrySchema(ma.Schema):
    entry_id = ma.fields.Integer()
    kind = ma.fields.String()
    points = PointsField()
    credited_at = Instant()
    reason = ma.fields.String()
    corrects_period = ma.fields.String(allow_none=True, metadata={"description": "调整所更正的期间（如 2025-Q4）"})
    audit_id = ma.fields.Integer(allow_none=True)


class CorrectionsSchema(ma.Schema):
    points = PointsField()
    entries = ma.fields.List(ma.fields.Nested(CorrectionEntrySchema))


class AnnualScoreSchema(ma.Schema):
    year = ma.fields.Integer()
    subject_type = ma.fields.Enum(SubjectType, by_value=True)
    subject = ma.fields.Nested(AnnualSubjectSchema)
    phone_masked = ma.fields.String(allow_none=True)
    department = ma.fields.Nested(AnnualRefSchema, allow_none=True)
    branch = ma.fields.Nested(AnnualRefSchema, allow_none=True)
    total = PointsField()
    by_item = ma.fields.List(ma.fields.Nested(AnnualItemSchema))
    activities = ma.fields.Integer()
    hours = PointsField()
    rank_city = ma.fields.Integer()
    rank_group = ma.fields.Integer(allow_none=True)
    stars = ma.fields.Integer()
    grade_by_score = ma.fields.String()
    grade = ma.fields.String()
    grade_reasons = ma.fields.List(ma.fields.Nested(GradeReasonSchema))
    corrections_after_settlement = ma.fields.Nested(CorrectionsSchema)


@blp.route("/annual/<int:year>/settle", methods=["POST"])
@login_required
@authorize_first("annual.settle")
@blp.response(201, AnnualSettlementSchema)
def settle(year):
    """年度结算（管理员）：冻结每名党员、每个组织的年度积分、排名与等次；重复结算返回 409"""
    return annual.settle_year(current_principal(), year)


@blp.route("/annual/<int:year>")
@login_required
@blp.response(200, AnnualSettlementSchema)
def settlement(year):
    """年度结算信息（截止时间、政策版本、校验和）"""
    return annual.get_settlement(current_principal(), year)


@blp.route("/annual/<int:year>/scores")
@reads_without_transaction
@login_required
@blp.arguments(AnnualScoresArgs, location="query")
@blp.response(200, page_of(AnnualScoreSchema))
@blp.alt_response(200, schema=FILE, content_type="text/csv", description="format=json：分页；csv、xlsx：文件下载")
@blp.alt_response(200, schema=FILE, content_type=XLSX_MIME, description="format=json：分页；csv、xlsx：文件下载")
def scores(args, year):
    """年度积分与等次（人事导出）：JSON 分页、CSV 或 XLSX；按人事权限范围，均留痕审计"""
    principal, fmt = current_principal(), args["format"]
    export = rows.open_export(principal, year, args["subject"], args["organization_id"])
    if fmt == "json":
        return rows.json_page(principal, export, args["page"], args["page_size"])
    rows.record_export(principal, export, fmt, export.total)
    return send_annual_export(export, fmt)
