"""双报到: member and organization reports, the community admin's confirmation or rejection, and who has
(not) reported in an organization."""

from __future__ import annotations

import marshmallow as ma

from points_service import ratelimit
from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, PeriodKey, RowId
from points_service.api.idempotency import idempotent
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.periods import PeriodKind
from points_service.domain.reports import rates
from points_service.domain.reports import reporting as reports
from points_service.models import OrgKind, ReportStatus, SubjectType

blp = Blueprint("reports", __name__, description="双报到：党员与部门党组织到社区报到")

MAX_LIST_ITEMS = 20
MAX_LIST_ITEM_LENGTH = 100


def _is_half(period) -> None:
    if period.kind != PeriodKind.HALF:
        raise ma.ValidationError("应为半年度，如 2026-H2")


def _list_of_lines(label: str):
    return ma.fields.List(CleanString(max_length=MAX_LIST_ITEM_LENGTH), load_default=list,
                          validate=ma.validate.Length(max=MAX_LIST_ITEMS, error=f"{label}最多 {{max}} 项"),
                          metadata={"description": f"{label}，每项不超过 {MAX_LIST_ITEM_LENGTH} 字"})


class MemberReportArgs(ma.Schema):
    community_id = RowId(required=True, strict=True, metadata={"description": "居住社区 id"})


class OrganizationReportArgs(ma.Schema):
    community_id = RowId(required=True, strict=True, metadata={"description": "结对社区 id"})
    resources = _list_of_lines("资源清单")
    needs = _list_of_lines("需求清单")
    projects = _list_of_lines("项目清单")


class ConfirmArgs(ma.Schema):
    grid_id = RowId(load_default=None, strict=True,
                    metadata={"description": "党员报到：分配到该社区的网格（可选）"})


class RejectArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200)


class ReportQueryArgs(PageArgs):
    status = ma.fields.Enum(ReportStatus, by_value=True, load_default=None)
    half = PeriodKey(load_default=None, validate=_is_half, metadata={"description": "如 2026-H2"})
    subject_type = ma.fields.Enum(SubjectType, by_value=True, load_default=None)


class ReportStatusArgs(PageArgs):
    organization_id = RowId(required=True, metadata={"description": "党支部或部门党组织 id"})
    half = PeriodKey(load_default=None, validate=_is_half, metadata={"description": "如 2026-H2；默认本半年度"})


class ReportRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class ReportSubjectSchema(ReportRefSchema):
    type = ma.fields.Enum(SubjectType, by_value=True)


class ReportSchema(ma.Schema):
    id = ma.fields.Integer()
    subject = ma.fields.Nested(ReportSubjectSchema)
    community = ma.fields.Nested(ReportRefSchema)
    grid = ma.fields.Nested(ReportRefSchema, allow_none=True)
    half = ma.fields.String(metadata={"example": "2026-H2"})
    status = ma.fields.Enum(ReportStatus, by_value=True)
    resources = ma.fields.List(ma.fields.String())
    needs = ma.fields.List(ma.fields.String())
    projects = ma.fields.List(ma.fields.String())
    submitted_at = Instant()
    decided_at = Instant(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(metadata={"description": "驳回理由"})


class ReportOrganizationSchema(ReportRefSchema):
    kind = ma.fields.Enum(OrgKind, by_value=True)


class ReportRatesSchema(ma.Schema):
    member_count = ma.fields.Integer()
    reported_count = ma.fields.Integer(metadata={"description": "截至该半年度已报到（经社区确认）的党员数"})
    reported_this_half_count = ma.fields.Integer(metadata={"description": "该半年度内报到并经确认的党员数"})
    report_rate = ma.fields.Decimal(as_string=False, metadata={"description": "reported_count / member_count"})
    half_report_rate = ma.fields.Decimal(as_string=False,
                                         metadata={"description": "reported_this_half_count / member_count"})


class BranchReportRatesSchema(ReportRatesSchema):
    organization = ma.fields.Nested(ReportOrganizationSchema)


class MemberReportStatusSchema(ma.Schema):
    member = ma.fields.Nested(ReportRefSchema)
    branch = ma.fields.Nested(ReportRefSchema)
    community = ma.fields.Nested(ReportRefSchema, metadata={"description": "居住社区"})
    half_status = ma.fields.Enum(ReportStatus, by_value=True, allow_none=True,
                                 metadata={"description": "该半年度报到状态：pending / confirmed；null 为未报到"})
    reported_this_half = ma.fields.Boolean()
    reported_ever = ma.fields.Boolean(metadata={"description": "截至该半年度是否报到过；false 即从未报到"})
    last_reported_half = ma.fields.String(allow_none=True)


class ReportStatusPageSchema(page_of(MemberReportStatusSchema), ReportRatesSchema):
    organization = ma.fields.Nested(ReportOrganizationSchema)
    half = ma.fields.String()
    branches = ma.fields.List(ma.fields.Nested(BranchReportRatesSchema))


@blp.route("/reports", methods=["POST"])
@login_required
@ratelimit.limit("RATELIMIT_SELF_REPORT_PER_MEMBER", ratelimit.by_account)
@idempotent
@blp.arguments(MemberReportArgs)
@blp.response(201, ReportSchema)
@blp.alt_response(409, description="already_reported / member_inactive：党员身份已停用")
def submit_member_report(args):
    """党员本人到居住社区报到（待社区确认）；同一半年度只能有一条待确认或已确认的报到"""
    return reports.describe_one(reports.submit_member_report(current_principal(), args["community_id"]))


@blp.route("/organizations/<int:org_id>/reports", methods=["POST"])
@login_required
@authorize_first("organization.manage")
@idempotent
@blp.arguments(OrganizationReportArgs)
@blp.response(201, ReportSchema)
def submit_organization_report(args, org_id):
    """部门党组织到结对社区报到，附资源、需求、项目三张清单（共驻共建协议）"""
    report = reports.submit_org_report(current_principal(), org_id, args.pop("community_id"), **args)
    return reports.describe_one(report)


@blp.route("/reports")
@login_required
@blp.arguments(ReportQueryArgs, location="query")
@blp.response(200, page_of(ReportSchema))
def list_reports(args):
    """报到列表：社区管理员看本社区的，党员看自己的，组织管理员看本组织及其党员的"""
    filters = {name: args.pop(name) for name in ("status", "half", "subject_type")}
    page = paginate(reports.list_reports(current_principal(), **filters), **args)
    return {**page, "items": reports.describe(page["items"])}


@blp.route("/reports/<int:report_id>/confirm", methods=["POST"])
@login_required
@authorize_first("report.decide")
@blp.arguments(ConfirmArgs)
@blp.response(200, ReportSchema)
def confirm_report(args, report_id):
    """社区确认报到（报到回执）：按积分政策计分，党员报到可同时分配网格"""
    return reports.describe_one(reports.confirm_report(current_principal(), report_id, grid_id=args["grid_id"]))


@blp.route("/reports/<int:report_id>/reject", methods=["POST"])
@login_required
@authorize_first("report.decide")
@blp.arguments(RejectArgs)
@blp.response(200, ReportSchema)
def reject_report(args, report_id):
    """社区驳回报到（须填写理由）；被驳回后可重新报到"""
    return reports.describe_one(reports.reject_report(current_principal(), report_id, args["reason"]))


@blp.route("/reports/status")
@login_required
@blp.arguments(ReportStatusArgs, location="query")
@blp.response(200, ReportStatusPageSchema)
def report_status(args):
    """组织内党员报到情况（谁报到了、谁从未报到）与报到率：支部书记、组织管理员、人事、管理员"""
    summary, members = rates.report_status(current_principal(), args.pop("organization_id"), args.pop("half"))
    return {**summary, **paginate(members, **args)}
