"""GET /me: who am I, what may I do, where do I belong."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.boards import MyRanksSchema
from points_service.api.core import Blueprint
from points_service.api.fields import Instant, PointsField
from points_service.api.security import current_principal, login_required
from points_service.api.structure import MemberSchema, NodeRefSchema
from points_service.db import reads_without_transaction
from points_service.domain.home import describe_me
from points_service.models import Role, ScopeType

blp = Blueprint("me", __name__, description="当前用户")


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    username = ma.fields.String(allow_none=True)
    display_name = ma.fields.String()


class RoleGrantSchema(ma.Schema):
    role = ma.fields.Enum(Role, by_value=True)
    scope_type = ma.fields.Enum(ScopeType, by_value=True)
    scope_id = ma.fields.Integer(allow_none=True)
    scope_name = ma.fields.String()


class AffiliationSchema(ma.Schema):
    branch = ma.fields.Nested(NodeRefSchema)
    community = ma.fields.Nested(NodeRefSchema)
    grid = ma.fields.Nested(NodeRefSchema, allow_none=True)
    valid_from = Instant()
    valid_to = Instant(allow_none=True)


class ExpiringSchema(ma.Schema):
    points = PointsField()
    on = Instant(metadata={"description": "when the next expiry run takes them"})


class HomePointsSchema(ma.Schema):
    month = PointsField(metadata={"description": "考核积分：本月获得"})
    quarter = PointsField(metadata={"description": "考核积分：本季度获得"})
    year = PointsField(metadata={"description": "考核积分：本年度获得"})
    standing = PointsField(metadata={"description": "活跃指数"})
    redeemable = PointsField(metadata={"description": "公益积分余额"})
    pending = ma.fields.Integer(metadata={"description": "待审核的上报与报到"})
    open_orders = ma.fields.Integer(metadata={"description": "积分超市待取货的订单数"})
    unread_messages = ma.fields.Integer(metadata={"description": "未读站内消息数（GET /me/messages）"})
    expiring = ma.fields.Nested(ExpiringSchema)
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class MeSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema)
    member = ma.fields.Nested(MemberSchema, allow_none=True)
    roles = ma.fields.List(ma.fields.Nested(RoleGrantSchema))
    affiliations = ma.fields.List(ma.fields.Nested(AffiliationSchema))
    points = ma.fields.Nested(HomePointsSchema, allow_none=True, metadata={"description": "members only"})
    ranks = ma.fields.Nested(MyRanksSchema, allow_none=True, metadata={
        "description": "members only: rank in every scope he belongs to, this quarter and by standing score"})


@blp.route("/me")
@reads_without_transaction
@login_required
@blp.response(200, MeSchema)
def me():
    """个人信息、角色与范围、组织关系"""
    return describe_me(current_principal())
