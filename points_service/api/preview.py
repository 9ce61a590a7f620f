"""POST /policy/preview: what-if replay of a candidate policy; writes nothing."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import PeriodKey, PointsField
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.ledger.preview import preview_candidate
from points_service.models import SubjectType

blp = Blueprint("policy_preview", __name__, url_prefix="/policy", description="积分政策")


class PreviewArgs(ma.Schema):
    period = PeriodKey(required=True, metadata={"example": "2026-Q3"})
    subject_type = ma.fields.Enum(SubjectType, by_value=True, load_default=SubjectType.MEMBER)
    document = ma.fields.Dict(required=True, metadata={"description": "候选政策（与 policy.yaml 相同结构）"})
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=1000))


class ChangeSchema(ma.Schema):
    subject_id = ma.fields.Integer()
    name = ma.fields.String()
    points_before = PointsField()
    points_after = PointsField()
    delta = PointsField()
    rank_before = ma.fields.Integer()
    rank_after = ma.fields.Integer()


class PreviewSchema(ma.Schema):
    period = PeriodKey()
    subject_type = ma.fields.Enum(SubjectType, by_value=True)
    subjects = ma.fields.Integer()
    changed = ma.fields.Integer()
    changes = ma.fields.List(ma.fields.Nested(ChangeSchema))


@blp.route("/preview", methods=["POST"])
@login_required
@authorize_first("policy.publish")
@blp.arguments(PreviewArgs)
@blp.response(200, PreviewSchema)
def preview(args):
    """按候选政策重放某期间的积分事实，返回分数与名次变化（不写入任何数据，仅管理员）"""
    return preview_candidate(current_principal(), args["document"], args["period"], args["subject_type"],
                             args["limit"])
