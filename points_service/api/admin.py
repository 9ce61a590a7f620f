"""POST /admin/users: console accounts with role grants; POST /admin/users/{id}/disable and /enable (admins)."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, RowId
from points_service.api.me import RoleGrantSchema, UserSchema
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.accounts.users import USERNAME, create_user, disable_user, enable_user
from points_service.models import Role, ScopeType

blp = Blueprint("admin", __name__, url_prefix="/admin", description="系统管理")


class GrantArgs(ma.Schema):
    role = ma.fields.Enum(Role, by_value=True, required=True)
    scope_type = ma.fields.Enum(ScopeType, by_value=True, required=True)
    scope_id = RowId(load_default=None)


class CreateUserArgs(ma.Schema):
    username = CleanString(required=True, max_length=64, validate=ma.validate.Regexp(USERNAME))
    password = ma.fields.String(required=True, validate=ma.validate.Length(max=128))
    display_name = CleanString(load_default="", min_length=0, max_length=50)
    roles = ma.fields.List(ma.fields.Nested(GrantArgs), required=True, validate=ma.validate.Length(min=1, max=20))


class DisableUserArgs(ma.Schema):
    reason = CleanString(load_default="", min_length=0, max_length=200, metadata={"description": "停用原因（可选）"})


class AccountSchema(UserSchema):
    is_active = ma.fields.Boolean(metadata={"description": "false: 已停用（不能登录，原有登录状态均已失效）"})
    roles = ma.fields.List(ma.fields.Nested(RoleGrantSchema), attribute="grants")


@blp.route("/users", methods=["POST"])
@login_required
@authorize_first("users.manage")
@blp.arguments(CreateUserArgs)
@blp.response(201, AccountSchema)
def create(args):
    """新建控制台用户并授予角色（仅系统管理员）"""
    grants = [(g["role"], g["scope_type"], g["scope_id"]) for g in args["roles"]]
    return create_user(current_principal(), args["username"], args["password"], grants, args["display_name"])


@blp.route("/users/<int:user_id>/disable", methods=["POST"])
@login_required
@authorize_first("users.manage")
@blp.arguments(DisableUserArgs)
@blp.response(200, AccountSchema)
def disable(args, user_id):
    """停用控制台账号：不能再登录，其访问令牌、刷新令牌和控制台会话立即失效（不能停用自己、党员本人的账号或最后一个系统管理员）"""
    return disable_user(current_principal(), user_id, args["reason"])


@blp.route("/users/<int:user_id>/enable", methods=["POST"])
@login_required
@authorize_first("users.manage")
@blp.response(200, AccountSchema)
def enable(user_id):
    """启用已停用的控制台账号：本人需重新登录，停用前的令牌不会恢复"""
    return enable_user(current_principal(), user_id)
