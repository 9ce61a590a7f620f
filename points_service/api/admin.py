"""POST /admin/users: console accounts with role grants (admins)."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, RowId
from points_service.api.me import RoleGrantSchema, UserSchema
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain.accounts.users import create_user
from points_service.models import Role, ScopeType

blp = Blueprint("admin", __name__, url_prefix="/admin", description="系统管理")


class GrantArgs(ma.Schema):
    role = ma.fields.Enum(Role, by_value=True, required=True)
    scope_type = ma.fields.Enum(ScopeType, by_value=True, required=True)
    scope_id = RowId(load_default=None)


class CreateUserArgs(ma.Schema):
    username = CleanString(required=True, max_length=64, validate=ma.validate.Regexp(r"^[A-Za-z0-9_.-]{3,64}$"))
    password = ma.fields.String(required=True, validate=ma.validate.Length(max=128))
    display_name = CleanString(load_default="", min_length=0, max_length=50)
    roles = ma.fields.List(ma.fields.Nested(GrantArgs), required=True, validate=ma.validate.Length(min=1, max=20))


class CreatedUserSchema(UserSchema):
    roles = ma.fields.List(ma.fields.Nested(RoleGrantSchema), attribute="grants")


@blp.route("/users", methods=["POST"])
@login_required
@authorize_first("users.manage")
@blp.arguments(CreateUserArgs)
@blp.response(201, CreatedUserSchema)
def create(args):
    """新建控制台用户并授予角色（仅系统管理员）"""
    grants = [(g["role"], g["scope_type"], g["scope_id"]) for g in args["roles"]]
    return create_user(current_principal(), args["username"], args["password"], grants, args["display_name"])
