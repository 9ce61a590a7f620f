"""用户与授权: console accounts, creating one with a first role, granting or revoking roles on a scope (an
organization or region named by its code), disabling and enabling an account — ``domain.accounts``, audited,
admins only."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console import reads
from points_service.console.forms import ROLE_NAMES, EmptyForm, GrantForm, ReasonForm, UserForm
from points_service.console.pages import apply_field_errors, page_number, paginate
from points_service.console.site import current_principal
from points_service.db import db
from points_service.domain.accounts import users as accounts
from points_service.domain.errors import NotFound, ServiceError, ValidationFailed
from points_service.models import ROLE_SCOPE, Role, ScopeType, User

blp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
GRANT_FIELDS = {"roles": "scope"}  # the use case names the grant list; the form has one role and its scope


def _grant_of(role_value: str, scope_code: str) -> tuple[Role, ScopeType, int | None]:
    role = Role(role_value)
    scope_type = ROLE_SCOPE[role]
    if scope_type == ScopeType.CITY:
        return role, scope_type, None
    scope_id = reads.scope_by_code(scope_type, (scope_code or "").strip())
    if scope_id is None:
        kind = "组织" if scope_type == ScopeType.ORGANIZATION else "区划"
        raise ValidationFailed({"scope": [f"请填写存在的{kind}编码"]})
    return role, scope_type, scope_id


@blp.route("", methods=["GET", "POST"])
def users():
    principal, form = current_principal(), UserForm()
    name = (request.args.get("name") or "").strip()[:50] or None
    page = paginate(accounts.list_users(principal, name=name), page_number())  # authorizes users.manage
    if form.validate_on_submit():
        try:
            grant = _grant_of(form.role.data, form.scope.data)
            user = accounts.create_user(principal, form.username.data, form.password.data, [grant],
                                        (form.display_name.data or "").strip())
        except ServiceError as exc:
            apply_field_errors(form, exc, GRANT_FIELDS)
        else:
            flash(f"已创建用户 {user.username}", "ok")
            return redirect(url_for(".user", user_id=user.id))
    grants = [grant for user in page.items for grant in user.grants]
    return render_template("console/admin/users.html", page=page, form=form, name=name or "",
                           scope_names=reads.scope_names(grants), roles=ROLE_NAMES)


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    return user


@blp.route("/<int:user_id>", methods=["GET", "POST"])
def user(user_id: int):
    principal, form = current_principal(), GrantForm()
    accounts.list_users(principal)  # authorizes users.manage before anything is shown
    account = _user(user_id)
    if form.validate_on_submit():
        try:
            accounts.grant_role(principal, user_id, *_grant_of(form.role.data, form.scope.data))
        except ServiceError as exc:
            apply_field_errors(form, exc, GRANT_FIELDS)
        else:
            flash("已授予角色", "ok")
            return redirect(url_for(".user", user_id=user_id))
    return render_template("console/admin/user.html", account=account, form=form, roles=ROLE_NAMES,
                           scope_names=reads.scope_names(list(account.grants)), revoke_form=EmptyForm(),
                           disable_form=ReasonForm(), is_self=account.id == principal.user_id)


@blp.route("/<int:user_id>/grants/<int:grant_id>/revoke", methods=["POST"])
def revoke(user_id: int, grant_id: int):
    try:
        accounts.revoke_grant(current_principal(), user_id, grant_id)
        flash("已撤销该角色", "ok")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".user", user_id=user_id))


@blp.route("/<int:user_id>/disable", methods=["POST"])
def disable(user_id: int):
    form = ReasonForm()
    if not form.validate():
        flash("；".join(e for errors in form.errors.values() for e in errors), "error")
    else:
        _attempt(lambda: accounts.disable_user(current_principal(), user_id, form.reason.data or ""), "已停用该账号")
    return redirect(url_for(".user", user_id=user_id))


@blp.route("/<int:user_id>/enable", methods=["POST"])
def enable(user_id: int):
    _attempt(lambda: accounts.enable_user(current_principal(), user_id), "已启用该账号")
    return redirect(url_for(".user", user_id=user_id))


def _attempt(action, success: str) -> None:
    try:
        action()
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(success, "ok")
