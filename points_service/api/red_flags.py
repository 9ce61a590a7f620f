"""流动红旗: admins award a closed period's flags (one holder per scope); everyone signed in sees the holders."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import Instant, PeriodKey, PointsField
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.api.stars import WithdrawalSchema, WithdrawArgs
from points_service.domain.awards import withdrawals
from points_service.domain.periods import PeriodKind
from points_service.domain.red_flags import awards as red_flags
from points_service.models import RedFlagKind

blp = Blueprint("red_flags", __name__, description="流动红旗：部门党支部按期评选，每期重新争取")


def _is_month_or_quarter(period) -> None:
    if period.kind not in (PeriodKind.MONTH, PeriodKind.QUARTER):
        raise ma.ValidationError("应为月份或季度，如 2026-11 或 2026-Q3")


class AwardArgs(ma.Schema):
    period = PeriodKey(required=True, validate=_is_month_or_quarter, metadata={"example": "2026-Q3"})


class RedFlagQueryArgs(ma.Schema):
    period = PeriodKey(required=True, validate=_is_month_or_quarter, metadata={"example": "2026-Q3"})


class RedFlagRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String(allow_none=True)


class RedFlagScopeSchema(ma.Schema):
    key = ma.fields.String(metadata={"description": "city 或 district:<区县 id>"})
    region_id = ma.fields.Integer(allow_none=True)
    name = ma.fields.String(allow_none=True)


class RedFlagSchema(ma.Schema):
    id = ma.fields.Integer()
    withdrawn = ma.fields.Boolean(metadata={"description": "已撤销的流动红旗仍列出，标记为 true"})
    withdrawn_reason = ma.fields.String(allow_none=True)
    withdrawn_at = Instant(allow_none=True)
    period = ma.fields.String()
    scope = ma.fields.Nested(RedFlagScopeSchema)
    organization = ma.fields.Nested(RedFlagRefSchema, allow_none=True,
                                    metadata={"description": "获旗党支部；null 为空缺"})
    previous_holder = ma.fields.Nested(RedFlagRefSchema, allow_none=True)
    kind = ma.fields.Enum(RedFlagKind, by_value=True, allow_none=True,
                          metadata={"description": "first 首次 / retained 保旗 / captured 夺旗"})
    kind_name = ma.fields.String(allow_none=True)
    score = PointsField(allow_none=True, metadata={"description": "党员人均考核积分（本期）"})
    report_rate = ma.fields.Decimal(as_string=False, allow_none=True)
    unexcused_absences = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(metadata={"description": "空缺原因"})
    candidate_count = ma.fields.Integer()
    cutoff_at = Instant()
    policy_version = ma.fields.Integer(allow_none=True)
    checksum = ma.fields.String()


class RedFlagListSchema(ma.Schema):
    period = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(RedFlagSchema))


class RedFlagReasonSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "no_members / low_report_rate / absences / holder / outranked"})
    message = ma.fields.String()


class RedFlagCandidateSchema(ma.Schema):
    organization_id = ma.fields.Integer()
    members = ma.fields.Integer()
    reported = ma.fields.Integer()
    report_rate = ma.fields.Function(lambda c: c.report_rate_bp / 10000)
    unexcused_absences = ma.fields.Integer()
    score = PointsField()
    eligible = ma.fields.Boolean()
    position = ma.fields.Integer(allow_none=True)
    reasons = ma.fields.List(ma.fields.Nested(RedFlagReasonSchema))


@blp.route("/red-flags/awards", methods=["POST"])
@login_required
@authorize_first("red_flag.award")
@blp.arguments(AwardArgs)
@blp.response(201, RedFlagListSchema)
def award(args):
    """评选已结束期间的流动红旗（管理员）；已评出的范围原样返回，不会改变"""
    awards = red_flags.award_red_flags(current_principal(), args["period"])
    return {"period": args["period"].key, "items": red_flags.describe_awards(awards)}


@blp.route("/red-flags")
@login_required
@blp.arguments(RedFlagQueryArgs, location="query")
@blp.response(200, RedFlagListSchema)
def list_red_flags(args):
    """某期各范围的流动红旗获得者（首次 / 保旗 / 夺旗，或空缺及原因）"""
    awards = red_flags.list_red_flags(current_principal(), args["period"])
    return {"period": args["period"].key, "items": red_flags.describe_awards(awards)}


@blp.route("/red-flags/awards/<int:award_id>/candidates")
@login_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(RedFlagCandidateSchema))
def list_candidates(args, award_id):
    """参评党支部及其门槛、得分与名次（管理员）"""
    return paginate(red_flags.award_candidates(current_principal(), award_id), **args)


@blp.route("/red-flags/awards/<int:award_id>/withdraw", methods=["POST"])
@login_required
@authorize_first("red_flag.award")
@blp.arguments(WithdrawArgs)
@blp.response(201, WithdrawalSchema)
def withdraw(args, award_id):
    """撤销已评出的流动红旗（管理员）：列表中标记为已撤销，其所得积分以冲正记录退回；重复撤销 409"""
    return withdrawals.withdraw_red_flag(current_principal(), award_id, args["reason"])
