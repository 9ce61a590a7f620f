"""GET /policy (the version in force, or ``?version=``) and POST /policy/versions (admins publish)."""

from __future__ import annotations

import marshmallow as ma
from flask import request

from points_service.api.core import Blueprint
from points_service.api.fields import MAX_ROW_ID, CleanString, Instant, PointsField
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.policy import find_policy, load_policy_text, publish_policy_version

blp = Blueprint("policy", __name__, url_prefix="/policy", description="积分政策")

YAML_MIMETYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


class PolicyQueryArgs(ma.Schema):
    version = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=MAX_ROW_ID),
                                metadata={"description": "版本号；缺省为当前生效的版本"})


class PublishQueryArgs(ma.Schema):
    """With a YAML body the body is the document, so the other inputs travel in the query string."""

    effective_from = Instant(required=True, metadata={"example": "2027-01-01T00:00:00+08:00"})
    note = CleanString(load_default="", min_length=0, max_length=200)


class PublishJsonArgs(PublishQueryArgs):
    document = ma.fields.Dict(required=True, metadata={"description": "政策文档，结构同 config/policy.yaml"})


class PolicyCapsSchema(ma.Schema):
    day = PointsField(allow_none=True)
    month = PointsField(allow_none=True)
    quarter = PointsField(allow_none=True)
    year = PointsField(allow_none=True)


class PolicyItemSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "member.activity_hour"})
    name = ma.fields.String(metadata={"example": "志愿服务（每小时）"})
    subject = ma.fields.String(metadata={"enum": ["member", "organization"]})
    kind = ma.fields.String(metadata={"enum": ["award", "deduction"]})
    points = PointsField()
    unit = ma.fields.String(metadata={"enum": ["times", "hours"]})
    max_units_per_fact = ma.fields.Decimal(allow_none=True)
    ledgers = ma.fields.Function(lambda item: sorted(item.ledgers), metadata={"type": "array",
                                                                              "items": {"type": "string"}})
    approval = ma.fields.String(metadata={"enum": ["auto", "branch_secretary", "community_admin"]})
    caps = ma.fields.Nested(PolicyCapsSchema)
    category = ma.fields.String(metadata={"example": "服务"})


class ItemValues(ma.fields.List):
    """The policy keeps items in a mapping by code; the API lists them in the file's order."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(None if value is None else list(value.values()), attr, obj, **kwargs)


class PolicyDecaySchema(ma.Schema):
    kind = ma.fields.String(metadata={"enum": ["none", "exponential", "linear"]})
    period = ma.fields.String()
    half_life_days = ma.fields.Decimal(allow_none=True)
    points_per_period = PointsField(allow_none=True)
    floor = PointsField()


class PolicyResetSchema(ma.Schema):
    every = ma.fields.String(metadata={"enum": ["none", "year", "half", "quarter"]})


class PolicyExpirySchema(ma.Schema):
    validity_months = ma.fields.Integer(allow_none=True, metadata={"description": "null = never expires"})


class PolicyBandSchema(ma.Schema):
    name = ma.fields.String()
    min_score = PointsField()


class PolicyVetoSchema(ma.Schema):
    code = ma.fields.String()
    threshold = ma.fields.Integer()
    max_grade = ma.fields.String()
    reason = ma.fields.String()


class PolicyGradesSchema(ma.Schema):
    bands = ma.fields.List(ma.fields.Nested(PolicyBandSchema))
    excellent_share_cap = ma.fields.Decimal()
    excellent_name = ma.fields.String()
    vetoes = ma.fields.List(ma.fields.Nested(PolicyVetoSchema))


class PolicyStarsSchema(ma.Schema):
    scope = ma.fields.String()
    quota_kind = ma.fields.String(metadata={"enum": ["top_n", "share"]})
    quota = ma.fields.Decimal()
    min_activities = ma.fields.Integer()
    min_points = PointsField()
    disqualifying_items = ma.fields.Function(lambda rule: sorted(rule.disqualifying_items),
                                             metadata={"type": "array", "items": {"type": "string"}})
    require_reported = ma.fields.Boolean()
    tie_breaks = ma.fields.List(ma.fields.String())
    publicity_working_days = ma.fields.Integer()


class PolicyRedFlagSchema(ma.Schema):
    period = ma.fields.String()
    scope = ma.fields.String()
    min_report_rate = ma.fields.Decimal()
    max_unexcused_absences = ma.fields.Integer()


class PolicySchema(ma.Schema):
    version = ma.fields.Integer()
    effective_from = Instant()
    checksum = ma.fields.String(metadata={"description": "SHA-256 of the stored canonical JSON document"})
    name = ma.fields.String()
    timezone = ma.fields.String()
    items = ItemValues(ma.fields.Nested(PolicyItemSchema))
    monthly_positive_cap = ma.fields.Dict(keys=ma.fields.String(), values=PointsField(allow_none=True))
    events = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    minimums = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    standing = ma.fields.Nested(PolicyDecaySchema)
    assessment_reset = ma.fields.Nested(PolicyResetSchema)
    redeemable_expiry = ma.fields.Nested(PolicyExpirySchema)
    grades = ma.fields.Nested(PolicyGradesSchema)
    stars = ma.fields.Nested(PolicyStarsSchema)
    red_flag = ma.fields.Nested(PolicyRedFlagSchema)


class PolicyVersionSchema(ma.Schema):
    version = ma.fields.Integer()
    effective_from = Instant()
    published_at = Instant()
    published_by_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String()
    checksum = ma.fields.String()


PUBLISH_DOC = {
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": PublishJsonArgs},
        "application/yaml": {"schema": {"type": "string", "description": "config/policy.yaml 格式的政策文档"}},
    }},
    "parameters": [{"in": "query", "schema": PublishQueryArgs}],
}


@blp.route("")
@login_required
@blp.arguments(PolicyQueryArgs, location="query")
@blp.response(200, PolicySchema)
def show(args):
    """当前生效的积分政策，或 ?version= 指定的版本（登录用户均可查看）"""
    return find_policy(args["version"])


@blp.route("/versions", methods=["POST"])
@login_required
@authorize_first("policy.publish")
@blp.doc(**PUBLISH_DOC)
@blp.response(201, PolicyVersionSchema)
def publish():
    """发布新版本的积分政策（仅系统管理员）

    JSON：`{"effective_from", "note", "document"}`；或 YAML 正文（Content-Type: application/yaml），
    此时 `effective_from`、`note` 放在查询参数中。生效时间只能是现在或将来。
    """
    args = _publish_args()
    return publish_policy_version(current_principal(), args["document"], args["effective_from"], args["note"])


def _publish_args() -> dict:
    # The strict JSON parser refuses non-JSON bodies (415), so a YAML body is read here instead.
    if request.mimetype in YAML_MIMETYPES:
        args = blp.ARGUMENTS_PARSER.parse(PublishQueryArgs, request, location="query")
        return {**args, "document": load_policy_text(request.get_data())}
    return blp.ARGUMENTS_PARSER.parse(PublishJsonArgs, request, location="json")
