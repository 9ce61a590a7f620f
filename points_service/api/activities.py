"""Activities, sign-ups, the rotating check-in code, check-in, check-out and the review of check-ins."""

from __future__ import annotations

import marshmallow as ma

from points_service import ratelimit
from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, PointsField, RowId
from points_service.api.idempotency import idempotent
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import acting_member_required, authorize_first, current_principal, login_required
from points_service.api.structure import NodeRefSchema
from points_service.domain.activities import cancelling
from points_service.domain.activities import signups as activities
from points_service.domain.activities.signups import MAX_DURATION, MAX_RADIUS_M, MIN_RADIUS_M, ActivityDraft, Venue
from points_service.domain.checkin import scans as checkin
from points_service.models import ActivityStatus, CheckinStatus, SignupStatus
from points_service.transactions import autocommitted

blp = Blueprint("activities", __name__, description="服务活动、报名与扫码签到签退")

# gcj02 is defined for mainland China only; a venue outside these bounds is a typo.
CHINA_LAT, CHINA_LNG = (3.8, 53.6), (73.5, 135.1)


class VenueSchema(ma.Schema):
    lat = ma.fields.Float(required=True, validate=ma.validate.Range(*CHINA_LAT), metadata={"example": 35.4154})
    lng = ma.fields.Float(required=True, validate=ma.validate.Range(*CHINA_LNG), metadata={"example": 116.5872})
    radius_m = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(MIN_RADIUS_M, MAX_RADIUS_M))


class ActivityArgs(ma.Schema):
    community_id = RowId(required=True, strict=True)
    title = CleanString(required=True, max_length=100)
    item_code = ma.fields.String(required=True, validate=ma.validate.Length(max=64),
                                 metadata={"example": "member.activity_hour"})
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    location = ma.fields.Nested(VenueSchema, required=True, metadata={"description": "gcj02 坐标与签到半径（米）"})
    capacity = ma.fields.Integer(load_default=None, allow_none=True, strict=True,
                                 validate=ma.validate.Range(1, 100_000), metadata={"description": "null 表示不限"})

    @ma.validates_schema
    def time_window(self, data, **_kwargs):
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts is None or ends is None:
            return
        if ends <= starts:
            raise ma.ValidationError("结束时间须晚于开始时间", "ends_at")
        if ends - starts > MAX_DURATION:
            raise ma.ValidationError("单次活动不能超过 24 小时", "ends_at")

    @ma.post_load
    def to_draft(self, data, **_kwargs) -> ActivityDraft:
        return ActivityDraft(venue=Venue(**data.pop("location")), **data)


class ActivityListArgs(PageArgs):
    community_id = RowId(load_default=None)
    start = Instant(data_key="from", load_default=None, metadata={"description": "活动结束晚于此时刻"})
    end = Instant(data_key="to", load_default=None, metadata={"description": "活动开始早于此时刻"})


class ActivitySchema(ma.Schema):
    id = ma.fields.Integer()
    community = ma.fields.Nested(NodeRefSchema)
    title = ma.fields.String()
    item_code = ma.fields.String()
    starts_at = Instant()
    ends_at = Instant()
    location = ma.fields.Function(lambda a: {"lat": a.venue_lat, "lng": a.venue_lng, "radius_m": a.radius_m},
                                  metadata={"description": "{lat, lng, radius_m}（gcj02，活动地点而非个人位置）"})
    capacity = ma.fields.Integer(allow_none=True)
    status = ma.fields.Enum(ActivityStatus, by_value=True)
    proposed_by_org_id = ma.fields.Integer(allow_none=True)


class ListedActivitySchema(ActivitySchema):
    """An activity as the list and the detail show it to the caller."""

    signed_up = ma.fields.Boolean(metadata={
        "description": "调用者（党员本人）是否已报名且未取消报名；非党员账号（工作人员）恒为 false"})


class ActivityCancelArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200, metadata={"description": "取消原因，告知已报名的党员"})


class SignupSchema(ma.Schema):
    activity_id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    status = ma.fields.Enum(SignupStatus, by_value=True)
    created_at = Instant()


class CheckinCodeSchema(ma.Schema):
    token = ma.fields.String(metadata={"description": "≤ 32 个字符，可直接作为小程序码的 scene"})
    expires_at = Instant(metadata={"description": "此码不再被接受的时刻；屏幕应每 step_seconds 秒刷新"})
    step_seconds = ma.fields.Integer()


class ScanArgs(ma.Schema):
    token = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    lat = ma.fields.Float(required=True, validate=ma.validate.Range(-90, 90))
    lng = ma.fields.Float(required=True, validate=ma.validate.Range(-180, 180))

    @ma.post_load
    def to_scan(self, data, **_kwargs) -> checkin.Scan:
        return checkin.Scan(**data)


class CheckinArgs(ScanArgs):
    accuracy = ma.fields.Float(load_default=None, validate=ma.validate.Range(min=0), attribute="accuracy_m",
                               metadata={"description": "定位精度（米），即 wx.getLocation 的 accuracy"})


class CheckinSchema(ma.Schema):
    checkin_id = ma.fields.Integer(attribute="id")
    activity_id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    member_name = ma.fields.String()
    status = ma.fields.Enum(CheckinStatus, by_value=True)
    checked_in_at = Instant()
    checked_out_at = Instant(allow_none=True)
    checkin_distance_m = ma.fields.Integer()
    checkout_distance_m = ma.fields.Integer(allow_none=True)
    hours = PointsField(allow_none=True)
    review_reason = ma.fields.String()


class CheckinListArgs(PageArgs):
    status = ma.fields.Enum(CheckinStatus, by_value=True, load_default=None)


class ReviewArgs(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(["approve", "reject"]))
    comment = CleanString(load_default="", max_length=200, min_length=0)


@blp.route("/activities", methods=["POST"])
@login_required
@authorize_first("activity.create")
@blp.arguments(ActivityArgs)
@blp.response(201, ActivitySchema)
def publish(draft):
    """社区管理员发布活动（积分项目须为按小时计、扫码自动确认的项目）"""
    return activities.publish_activity(current_principal(), draft)


@blp.route("/organizations/<int:org_id>/activities", methods=["POST"])
@login_required
@authorize_first("organization.manage")
@blp.arguments(ActivityArgs)
@blp.response(201, ActivitySchema)
def propose(draft, org_id):
    """支部或部门党组织提议在社区开展活动（状态 proposed，待审批）"""
    return activities.propose_activity(current_principal(), org_id, draft)


@blp.route("/activities")
@login_required
@blp.arguments(ActivityListArgs, location="query")
@blp.response(200, page_of(ListedActivitySchema))
def list_activities(args):
    """活动列表：已发布的活动；管理者另见其管理的待审批活动。signed_up：本人是否已报名"""
    principal = current_principal()
    statement = activities.list_activities(principal, community_id=args.pop("community_id"),
                                           start=args.pop("start"), end=args.pop("end"))
    return paginate(activities.with_signed_up(statement, principal), **args)


@blp.route("/activities/<int:activity_id>")
@login_required
@blp.response(200, ListedActivitySchema)
def get_activity(activity_id):
    """活动详情（signed_up：本人是否已报名）"""
    return activities.view_activity(current_principal(), activity_id)


@blp.route("/activities/<int:activity_id>/cancel", methods=["POST"])
@login_required
@authorize_first("activity.manage")
@blp.arguments(ActivityCancelArgs)
@blp.response(200, ActivitySchema)
@blp.alt_response(403, description="activity_host_only：已发布的活动只有承办社区的管理员可以取消")
@blp.alt_response(409, description="activity_not_cancellable：未发布、已取消、已结束或已有党员签到")
def cancel(args, activity_id):
    """取消活动（活动结束前且尚无人签到；已报名的党员收到站内消息）"""
    return cancelling.cancel_activity(current_principal(), activity_id, args["reason"])


@blp.route("/activities/<int:activity_id>/signups", methods=["POST"])
@login_required
@blp.response(201, SignupSchema)
@blp.alt_response(409, description="activity_full / already_signed_up / member_inactive：党员身份已停用")
def sign_up(activity_id):
    """党员报名（活动开始前；满员 409 activity_full，重复 409 already_signed_up）"""
    return activities.sign_up(current_principal(), activity_id)


@blp.route("/activities/<int:activity_id>/signups", methods=["DELETE"])
@login_required
@blp.response(200, SignupSchema)
def withdraw(activity_id):
    """取消报名（活动开始前）"""
    return activities.withdraw(current_principal(), activity_id)


@blp.route("/activities/<int:activity_id>/checkin-code")
@login_required
@authorize_first("activity.manage")
@blp.response(200, CheckinCodeSchema)
def checkin_code(activity_id):
    """组织者屏幕上的滚动签到码（每 step_seconds 秒更新，上一个码仍有效）"""
    issued = checkin.checkin_code(current_principal(), activity_id)
    return {"token": issued.token, "expires_at": issued.expires_at, "step_seconds": checkin.step_seconds()}


@blp.route("/activities/<int:activity_id>/checkins", methods=["POST"])
@autocommitted
@acting_member_required
@ratelimit.limit("RATELIMIT_CHECKIN_PER_MEMBER", ratelimit.by_account)
@idempotent
@blp.arguments(CheckinArgs)
@blp.response(201, CheckinSchema)
@blp.alt_response(409, description="already_checked_in：data.checkin_id 为已有签到的 id（据此签退）"
                                   " / activity_cancelled")
def check_in(scan, activity_id):
    """扫码签到（服务器时间为准；可带 Idempotency-Key）"""
    return checkin.check_in(current_principal(), activity_id, scan)


@blp.route("/activities/<int:activity_id>/checkins")
@login_required
@authorize_first("activity.manage")
@blp.arguments(CheckinListArgs, location="query")
@blp.response(200, page_of(CheckinSchema))
def list_checkins(args, activity_id):
    """活动签到名单（组织者；status=review 为待审核）"""
    return paginate(checkin.list_checkins(current_principal(), activity_id, args.pop("status")), **args)


@blp.route("/checkins/<int:checkin_id>/checkout", methods=["POST"])
@acting_member_required
@ratelimit.limit("RATELIMIT_CHECKIN_PER_MEMBER", ratelimit.by_account)
@idempotent
@blp.arguments(ScanArgs)
@blp.response(200, CheckinSchema)
def check_out(scan, checkin_id):
    """扫码签退：按服务时长记分（可带 Idempotency-Key）"""
    return checkin.check_out(current_principal(), checkin_id, scan)


@blp.route("/checkins/<int:checkin_id>/review", methods=["POST"])
@login_required
@authorize_first("activity.manage")
@blp.arguments(ReviewArgs)
@blp.response(200, CheckinSchema)
def review(args, checkin_id):
    """社区管理员审核可疑签到（approve 通过并记分 / reject 不记分）"""
    return checkin.resolve_review(current_principal(), checkin_id, args["decision"] == "approve",
                                  comment=args["comment"])
