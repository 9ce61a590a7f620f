"""GET /regions, /communities, /organizations (tree), /members (scoped), /members/{id}."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, RowId
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import current_principal, login_required
from points_service.domain import structure
from points_service.models import OrgKind, RegionLevel

blp = Blueprint("structure", __name__, description="区划、组织与党员花名册")


class NodeRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class RegionSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    level = ma.fields.Enum(RegionLevel, by_value=True)
    parent_id = ma.fields.Integer(allow_none=True)


class OrganizationSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.Enum(OrgKind, by_value=True)
    parent_id = ma.fields.Integer(allow_none=True)
    paired_community = ma.fields.Nested(NodeRefSchema, allow_none=True)


class OrganizationNodeSchema(ma.Schema):
    org = ma.fields.Nested(OrganizationSchema)
    children = ma.fields.List(ma.fields.Nested(lambda: OrganizationNodeSchema()))


class MemberSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    phone = ma.fields.String(attribute="phone_masked", metadata={"description": "masked, e.g. 138****8000"})
    branch = ma.fields.Nested(NodeRefSchema)
    community = ma.fields.Nested(NodeRefSchema)
    grid = ma.fields.Nested(NodeRefSchema, allow_none=True)
    show_on_boards = ma.fields.Boolean()
    is_active = ma.fields.Boolean(metadata={"description": "false: 已停用（离职、退休或组织关系转出）"})
    inactive_since = Instant(allow_none=True)


class RosterMemberSchema(MemberSchema):
    """A member as staff read him in the roster (list, detail, and the lifecycle writes that answer with him); the
    member's own views (``GET /me``, sign-in) keep ``MemberSchema``, where he is bound by definition."""
    wechat_bound = ma.fields.Boolean(metadata={
        "description": "是否已绑定微信（true：可在控制台或 POST /members/{id}/unbind-wechat 解绑）；不返回 openid"})


class RegionQueryArgs(PageArgs):
    level = ma.fields.Enum(RegionLevel, by_value=True, load_default=None)
    parent_id = RowId(load_default=None)


class CommunityQueryArgs(PageArgs):
    parent_id = RowId(load_default=None, metadata={"description": "街道 id"})


class MemberQueryArgs(PageArgs):
    branch_id = RowId(load_default=None)
    community_id = RowId(load_default=None)
    name = CleanString(load_default=None, max_length=50)


@blp.route("/regions")
@login_required
@blp.arguments(RegionQueryArgs, location="query")
@blp.response(200, page_of(RegionSchema))
def regions(args):
    """区划（市 > 区县 > 街道 > 社区 > 网格）"""
    return paginate(structure.list_regions(args.pop("level"), args.pop("parent_id")), **args)


@blp.route("/communities")
@login_required
@blp.arguments(CommunityQueryArgs, location="query")
@blp.response(200, page_of(RegionSchema))
def communities(args):
    """社区列表"""
    return paginate(structure.list_regions(RegionLevel.COMMUNITY, args.pop("parent_id")), **args)


@blp.route("/organizations")
@login_required
@blp.response(200, OrganizationNodeSchema(many=True))
def organizations():
    """组织树（部门党组织 > 党支部）"""
    return structure.organization_tree()


@blp.route("/members")
@login_required
@blp.arguments(MemberQueryArgs, location="query")
@blp.response(200, page_of(RosterMemberSchema))
def members(args):
    """党员列表：仅返回调用者权限范围内的党员"""
    statement = structure.list_members(current_principal(), branch_id=args.pop("branch_id"),
                                       community_id=args.pop("community_id"), name=args.pop("name"))
    return paginate(statement, **args)


@blp.route("/members/<int:member_id>")
@login_required
@blp.response(200, RosterMemberSchema)
def member(member_id):
    """党员详情"""
    return structure.get_member(current_principal(), member_id)
