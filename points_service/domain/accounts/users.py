"""Console accounts and role grants (admins only): creating an account, granting and revoking roles, disabling
and enabling an account. Some active account always holds the admin role: the last one can neither be disabled
nor lose that role."""

from __future__ import annotations

import re

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import Principal, authorize
from points_service.domain.accounts.signin import hash_password
from points_service.domain.accounts.tokens import end_sessions
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.models import (
    ROLE_SCOPE,
    Member,
    Organization,
    Region,
    Role,
    RoleGrant,
    ScopeType,
    User,
)

MIN_PASSWORD_LENGTH = 10
# \Z, not $: $ also matches before a final newline, which would become part of the username
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}\Z")
USERNAME_RULE = "3–64 位字母、数字或 _ . -"


def check_username(username: str) -> None:
    """A console username: what the API, the console and ``flask users create`` accept."""
    if not USERNAME.match(username or ""):
        raise ValidationFailed({"username": [f"用户名应为 {USERNAME_RULE}"]})


def check_password_strength(password: str) -> None:
    has_letter, has_digit = any(c.isalpha() for c in password), any(c.isdigit() for c in password)
    if len(password) < MIN_PASSWORD_LENGTH or not (has_letter and has_digit):
        raise ValidationFailed({"password": [f"密码至少 {MIN_PASSWORD_LENGTH} 位，且需同时包含字母和数字"]})


def validate_grant(role: Role, scope_type: ScopeType, scope_id: int | None) -> None:
    """A grant's scope must be of the kind its role expects and must exist."""
    expected = ROLE_SCOPE[role]
    if scope_type != expected:
        raise ValidationFailed({"roles": [f"角色 {role.value} 的范围类型应为 {expected.value}"]})
    model = {ScopeType.ORGANIZATION: Organization, ScopeType.REGION: Region}.get(scope_type)
    if model is None and scope_id is not None:
        raise ValidationFailed({"roles": [f"角色 {role.value} 的范围是全市，不应指定 scope_id"]})
    if model is not None and (scope_id is None or db.session.get(model, scope_id) is None):
        raise ValidationFailed({"roles": [f"范围 {scope_type.value}:{scope_id} 不存在"]})


def validate_grants(grants: list[tuple[Role, ScopeType, int | None]]) -> None:
    if len(set(grants)) != len(grants):
        raise ValidationFailed({"roles": ["同一角色与范围只能授予一次"]})
    for role, scope_type, scope_id in grants:
        validate_grant(role, scope_type, scope_id)


def add_user(username: str, password: str, grants: list[tuple[Role, ScopeType, int | None]],
             display_name: str = "", granted_by: int | None = None) -> User:
    """Create a console user with grants; flushes only (the CLI and the API use case commit).

    Everything is checked before anything is added, so a refusal leaves the session clean."""
    check_username(username)
    check_password_strength(password)
    validate_grants(grants)
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict("用户名已存在", code="username_taken")
    user = User(username=username, password_hash=hash_password(password), display_name=display_name or username)
    user.grants = [RoleGrant(role=role, scope_type=scope_type, scope_id=scope_id, granted_by_id=granted_by)
                   for role, scope_type, scope_id in grants]
    db.session.add(user)
    db.session.flush()
    return user


def create_user(actor: Principal, username: str, password: str,
                grants: list[tuple[Role, ScopeType, int | None]], display_name: str = "") -> User:
    authorize(actor, "users.manage")
    user = add_user(username, password, grants, display_name, granted_by=actor.user_id)
    audit("user.create", actor=actor, target=user,
          detail={"roles": [f"{r.value}@{s.value}:{i}" for r, s, i in grants]})
    db.session.commit()
    return user


def list_users(actor: Principal, *, name: str | None = None) -> sa.Select:
    """Console accounts (those with a username), newest first; admins only."""
    authorize(actor, "users.manage")
    statement = sa.select(User).where(User.username.is_not(None)).order_by(User.id.desc())
    if name:
        statement = statement.where(sa.or_(User.username.contains(name), User.display_name.contains(name)))
    return statement


def grant_role(actor: Principal, user_id: int, role: Role, scope_type: ScopeType, scope_id: int | None) -> RoleGrant:
    """Give an account one more role on a scope (audited)."""
    authorize(actor, "users.manage")
    user = _user(user_id)
    validate_grant(role, scope_type, scope_id)
    if any((g.role, g.scope_type, g.scope_id) == (role, scope_type, scope_id) for g in user.grants):
        raise Conflict("该用户已有此角色与范围", code="grant_exists")
    grant = RoleGrant(user_id=user.id, role=role, scope_type=scope_type, scope_id=scope_id, granted_by_id=actor.user_id)
    db.session.add(grant)
    db.session.flush()
    audit("user.grant", actor=actor, target=user, detail={"role": f"{role.value}@{scope_type.value}:{scope_id}"})
    db.session.commit()
    return grant


def revoke_grant(actor: Principal, user_id: int, grant_id: int) -> None:
    """Take one role grant away (audited). An admin cannot take his own admin role (no locking oneself out), nor
    the last active admin's."""
    authorize(actor, "users.manage")
    grant = db.session.get(RoleGrant, grant_id)
    if grant is None or grant.user_id != user_id:
        raise NotFound("授权不存在")
    if grant.role == Role.ADMIN:
        if grant.user_id == actor.user_id:
            raise Conflict("不能撤销自己的系统管理员角色", code="own_admin_grant")
        _lock_accounts(user_id)
        if not _admin_remains(without_grant=grant.id):
            raise LastAdmin()
    detail = {"role": f"{grant.role.value}@{grant.scope_type.value}:{grant.scope_id}"}
    db.session.delete(grant)
    audit("user.revoke", actor=actor, target_type="users", target_id=user_id, detail=detail)
    db.session.commit()


class LastAdmin(Conflict):
    code, message = "last_admin", "这是最后一个可用的系统管理员账号，不能停用或撤销其管理员角色"


class OwnAccount(Conflict):
    code, message = "own_account", "不能停用自己的账号"


class MemberAccount(Conflict):
    code, message = "member_account", "党员本人的账号随党员身份停用和恢复，请在党员管理中办理"


class AlreadyDisabled(Conflict):
    code, message = "user_already_disabled", "该账号已停用"


class AlreadyEnabled(Conflict):
    code, message = "user_already_enabled", "该账号未停用，无需启用"


def disable_user(actor: Principal, user_id: int, reason: str = "") -> User:
    """Disable a console account (audited): it cannot sign in, and every session it has ends at once. Refused for
    one's own account, a member's account (his status decides, ``domain.lifecycle``) and the last active admin."""
    authorize(actor, "users.manage")
    if user_id == actor.user_id:
        raise OwnAccount()
    user = disable_account(user_id, reason, actor=actor)
    db.session.commit()
    return user


def enable_user(actor: Principal, user_id: int) -> User:
    """Enable a disabled console account again (audited). Its user signs in afresh: no earlier token revives."""
    authorize(actor, "users.manage")
    user = enable_account(user_id, actor=actor)
    db.session.commit()
    return user


def disable_account(user_id: int, reason: str = "", *, actor: Principal | None = None,
                    detail: dict | None = None) -> User:
    """``disable_user`` without the actor's checks, for the CLI too. Only flushes; every check comes first."""
    user = _lock_accounts(user_id)
    _check_console_account(user)
    if not user.is_active:
        raise AlreadyDisabled()
    if not _admin_remains(without_user=user.id):
        raise LastAdmin()
    user.is_active = False
    db.session.flush()
    end_sessions(user.id)
    reason = (reason or "").strip()[:200]
    audit("user.disable", actor=actor, target=user, detail={**({"reason": reason} if reason else {}), **(detail or {})})
    return user


def enable_account(user_id: int, *, actor: Principal | None = None, detail: dict | None = None) -> User:
    """``enable_user`` without the actor's checks, for the CLI too. Only flushes."""
    user = _lock_accounts(user_id)
    _check_console_account(user)
    if user.is_active:
        raise AlreadyEnabled()
    user.is_active = True
    db.session.flush()
    end_sessions(user.id)  # whatever disabled it: nothing issued before comes back to life
    audit("user.enable", actor=actor, target=user, detail=detail)
    return user


def _check_console_account(user: User) -> None:
    if user.member_id is not None:
        raise MemberAccount()


def _lock_accounts(user_id: int) -> User:
    """The account, read afresh and locked (FOR UPDATE) with every account holding the admin role, in id order:
    changes that could take away the last active admin wait for each other, and each then counts the admins
    anew. Raises NotFound for a missing account."""
    admins = sa.select(RoleGrant.user_id).where(RoleGrant.role == Role.ADMIN)
    locked = db.session.scalars(
        sa.select(User).where(sa.or_(User.id == user_id, User.id.in_(admins))).order_by(User.id)
        .with_for_update().execution_options(populate_existing=True)).all()
    user = next((row for row in locked if row.id == user_id), None)
    if user is None:
        raise NotFound("用户不存在")
    return user


def _admin_remains(*, without_user: int | None = None, without_grant: int | None = None) -> bool:
    """Whether an active account would still hold the admin role without that account or that grant. True when
    there is no active admin to begin with: the change then takes none away (the CLI's ``users enable`` or
    ``users create`` is the way back)."""
    active_member = sa.select(Member.id).where(Member.is_active)
    statement = (sa.select(RoleGrant.id).join(User, User.id == RoleGrant.user_id)
                 .where(RoleGrant.role == Role.ADMIN, RoleGrant.scope_type == ScopeType.CITY, User.is_active,
                        sa.or_(User.member_id.is_(None), User.member_id.in_(active_member))).limit(1))
    remaining = statement
    if without_user is not None:
        remaining = remaining.where(User.id != without_user)
    if without_grant is not None:
        remaining = remaining.where(RoleGrant.id != without_grant)
    return db.session.scalar(remaining) is not None or db.session.scalar(statement) is None


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在")
    return user
