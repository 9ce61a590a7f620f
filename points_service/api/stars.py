"""业务之星: quarterly runs (admins propose, publish, decide objections, finalize; community admins review
their communities' candidates), objections during publicity (anyone signed in), published winners (everyone)."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, PeriodKey, PointsField, RowId
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.awards import withdrawals
from points_service.domain.periods import PeriodKind
from points_service.domain.stars import reading as stars_reading
from points_service.domain.stars import runs as stars
from points_service.models import ObjectionStatus, StarRunStatus

blp = Blueprint("stars", __name__, description="业务之星：季度评选、公示、异议与结果")

STAR_SCOPES = ("community", "street", "organization")


def _is_quarter(period) -> None:
    if period.kind != PeriodKind.QUARTER:
        raise ma.ValidationError("应为季度，如 2026-Q3")


class StarRunCreateArgs(ma.Schema):
    period = PeriodKey(required=True, validate=_is_quarter, metadata={"example": "2026-Q3"})
    scope = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STAR_SCOPES),
                             metadata={"description": "评选范围：community / street / organization；默认按积分政策"})


class StarRunQueryArgs(PageArgs):
    period = PeriodKey(load_default=None, validate=_is_quarter)


class CandidateQueryArgs(PageArgs):
    scope_id = RowId(load_default=None, metadata={"description": "社区、街道或单位 id"})
    eligible = ma.fields.Boolean(load_default=None)
    winner = ma.fields.Boolean(load_default=None)


class StarsQueryArgs(PageArgs):
    period = PeriodKey(required=True, validate=_is_quarter, metadata={"example": "2026-Q3"})


class ObjectionArgs(ma.Schema):
    member_id = RowId(required=True, strict=True, metadata={"description": "被提出异议的候选人"})
    reason = CleanString(required=True, max_length=500)


class DecisionArgs(ma.Schema):
    upheld = ma.fields.Boolean(required=True, truthy={True}, falsy={False},
                               metadata={"description": "true：异议成立（取消其资格并重新确定当选者）"})
    comment = CleanString(load_default="", min_length=0, max_length=200)


class WithdrawArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200, metadata={"description": "撤销理由"})


class WithdrawalSchema(ma.Schema):
    id = ma.fields.Integer()
    award_type = ma.fields.String(metadata={"description": "star / red_flag"})
    award_id = ma.fields.Integer()
    reason = ma.fields.String()
    reversed_entries = ma.fields.Integer(metadata={"description": "因撤销而冲正的积分记录数"})
    withdrawn_at = Instant()


class StarRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String(allow_none=True)


class StarScopeSchema(StarRefSchema):
    type = ma.fields.String(metadata={"description": "community / street / organization"})


class StarReasonSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "min_activities / min_points / disqualified_item / "
                                                     "not_reported / objection_upheld / selected / outside_quota"})
    message = ma.fields.String()


class StarSchema(ma.Schema):
    """A published winner."""

    id = ma.fields.Integer(metadata={"description": "当选记录 id（撤销时用）"})
    withdrawn = ma.fields.Boolean(metadata={"description": "已撤销的荣誉仍列出，标记为 true"})
    withdrawn_reason = ma.fields.String(allow_none=True)
    withdrawn_at = Instant(allow_none=True)
    member = ma.fields.Nested(StarRefSchema)
    community = ma.fields.Nested(StarRefSchema)
    scope = ma.fields.Nested(StarScopeSchema)
    period = ma.fields.String()
    status = ma.fields.String(metadata={"description": "publicity（公示中）/ final（已确定）"})
    points = PointsField()
    activities = ma.fields.Integer()
    hours = PointsField()
    position = ma.fields.Integer()


class StarCandidateSchema(StarSchema):
    micro_wishes = ma.fields.Integer()
    disqualifying = ma.fields.Integer(metadata={"description": "本季度取消资格的扣分记录数"})
    reported = ma.fields.Boolean()
    reached_at = Instant(allow_none=True, metadata={"description": "达到该分数的时间（本季度最后一次计分）"})
    eligible = ma.fields.Boolean()
    position = ma.fields.Integer(allow_none=True, metadata={"description": "在本范围符合条件者中的名次"})
    winner = ma.fields.Boolean()
    reasons = ma.fields.List(ma.fields.Nested(StarReasonSchema))


class ObjectionSchema(ma.Schema):
    id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    reason = ma.fields.String()
    status = ma.fields.Enum(ObjectionStatus, by_value=True)
    raised_at = Instant()
    decided_at = Instant(allow_none=True)
    comment = ma.fields.String()


class StarRunSchema(ma.Schema):
    id = ma.fields.Integer()
    period = ma.fields.String()
    scope_type = ma.fields.String()
    status = ma.fields.Enum(StarRunStatus, by_value=True)
    policy_version = ma.fields.Integer(allow_none=True)
    cutoff_at = Instant()
    checksum = ma.fields.String(metadata={"description": "候选人结果的 sha256，可由台账按截止时间复算"})
    candidate_count = ma.fields.Integer()
    eligible_count = ma.fields.Integer()
    winner_count = ma.fields.Integer()
    publicity_ends_on = ma.fields.Date(allow_none=True, metadata={"description": "公示期最后一个工作日"})
    publicity_ends_at = Instant(allow_none=True)
    created_at = Instant()
    published_at = Instant(allow_none=True)
    finalized_at = Instant(allow_none=True)
    winners = ma.fields.List(ma.fields.Nested(StarCandidateSchema))
    objections = ma.fields.List(ma.fields.Nested(ObjectionSchema))


class StarRunSummarySchema(StarRunSchema):
    class Meta:
        exclude = ("winners", "objections", "publicity_ends_at")


@blp.route("/stars/runs", methods=["POST"])
@login_required
@authorize_first("star.run")
@blp.arguments(StarRunCreateArgs)
@blp.response(201, StarRunSchema)
def propose(args):
    """评选已结束季度的业务之星（管理员）：每名党员是否符合条件及原因、名次与当选者；已公示的季度不能重评（409）"""
    actor = current_principal()
    return stars_reading.describe_run(actor, stars.propose_star_run(actor, args["period"], scope_type=args["scope"]))


@blp.route("/stars/runs")
@login_required
@blp.arguments(StarRunQueryArgs, location="query")
@blp.response(200, page_of(StarRunSummarySchema))
def list_runs(args):
    """评选列表（管理员、社区管理员）"""
    return paginate(stars_reading.list_star_runs(current_principal(), args.pop("period")), **args)


@blp.route("/stars/runs/<int:run_id>")
@login_required
@blp.response(200, StarRunSchema)
def get_run(run_id):
    """一次评选：状态、公示期、当选者与异议（社区管理员只看本社区候选人的）"""
    actor = current_principal()
    return stars_reading.describe_run(actor, stars_reading.get_star_run(actor, run_id))


@blp.route("/stars/runs/<int:run_id>/candidates")
@login_required
@blp.arguments(CandidateQueryArgs, location="query")
@blp.response(200, page_of(StarCandidateSchema))
def list_candidates(args, run_id):
    """全部候选人及其是否当选的原因（社区管理员只看本社区的）"""
    filters = {name: args.pop(name) for name in ("scope_id", "eligible", "winner")}
    page = paginate(stars_reading.list_candidates(current_principal(), run_id, **filters), **args)
    return {**page, "items": stars_reading.describe_candidates(page["items"])}


@blp.route("/stars/runs/<int:run_id>/publish", methods=["POST"])
@login_required
@authorize_first("star.run")
@blp.response(200, StarRunSchema)
def publish(run_id):
    """发布公示：公示期为发布次日起的若干个工作日（按政策，跳过周末与节假日，含调休）"""
    actor = current_principal()
    return stars_reading.describe_run(actor, stars.publish_star_run(actor, run_id))


@blp.route("/stars/runs/<int:run_id>/objections", methods=["POST"])
@login_required
@blp.arguments(ObjectionArgs)
@blp.response(201, ObjectionSchema)
def raise_objection(args, run_id):
    """公示期内对候选人提出异议；公示期外 409 invalid_transition"""
    return stars.raise_objection(current_principal(), run_id, args["member_id"], args["reason"])


@blp.route("/stars/runs/<int:run_id>/objections/<int:objection_id>/decision", methods=["POST"])
@login_required
@authorize_first("star.run")
@blp.arguments(DecisionArgs)
@blp.response(200, ObjectionSchema)
def decide_objection(args, run_id, objection_id):
    """处理异议（管理员）：成立则取消该候选人资格，并在本次评选内重新确定当选者"""
    return stars.decide_objection(current_principal(), run_id, objection_id, args["upheld"], args["comment"])


@blp.route("/stars/runs/<int:run_id>/finalize", methods=["POST"])
@login_required
@authorize_first("star.run")
@blp.response(200, StarRunSchema)
def finalize(run_id):
    """确定结果并冻结：异议未处理完（objections_open）或公示期未满（publicity_not_ended）时 409"""
    actor = current_principal()
    return stars_reading.describe_run(actor, stars.finalize_star_run(actor, run_id))


@blp.route("/stars")
@login_required
@blp.arguments(StarsQueryArgs, location="query")
@blp.response(200, page_of(StarSchema))
def list_stars(args):
    """某季度的业务之星（公示中的标记为 publicity，已确定的为 final）"""
    page = paginate(stars_reading.published_stars(current_principal(), args.pop("period")), **args)
    return {**page, "items": stars_reading.describe_candidates(page["items"])}


@blp.route("/stars/awards/<int:award_id>/withdraw", methods=["POST"])
@login_required
@authorize_first("star.run")
@blp.arguments(WithdrawArgs)
@blp.response(201, WithdrawalSchema)
def withdraw(args, award_id):
    """撤销已公示或已确定的业务之星（管理员）：列表中标记为已撤销，其所得积分以冲正记录退回；重复撤销 409"""
    return withdrawals.withdraw_star(current_principal(), award_id, args["reason"])
