"""``flask users create``: bootstrap console accounts without any default password; ``flask users disable`` and
``flask users enable``: the operator's way when no admin can sign in; ``flask users unbind-wechat``: a member's
解绑微信 as the operator."""

from __future__ import annotations

import os

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from points_service.db import MAX_ROW_ID, db
from points_service.domain.errors import ServiceError
from points_service.models import ROLE_SCOPE, Role, ScopeType, User

users_cli = AppGroup("users", help="Console accounts.")


def _username(_context, _param, username: str) -> str:
    """The API's and the console's rule (``accounts.users.check_username``), refused before any prompt."""
    from points_service.domain.accounts.users import check_username

    try:
        check_username(username)
    except ServiceError as exc:
        raise click.BadParameter(" ".join(exc.data["errors"]["username"])) from exc
    return username


@users_cli.command("create")
@click.argument("username", callback=_username)
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice([r.value for r in Role]),
              help="Role to grant; repeatable.")
@click.option("--scope-id", "scope_ids", multiple=True, type=click.IntRange(1, MAX_ROW_ID),
              help="Scope node id for each non-admin --role, in the same order.")
@click.option("--display-name", default="")
def create_user_command(username, roles, scope_ids, display_name):
    """Create a console user. The password comes from POINTS_NEW_USER_PASSWORD or a prompt."""
    from points_service.domain.accounts.users import add_user
    from points_service.domain.audit import audit

    grants = _grants(roles, scope_ids)
    password = os.environ.get("POINTS_NEW_USER_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        user = add_user(username, password, grants, display_name)
        audit("user.create", target=user, detail={"roles": [f"{r.value}@{s.value}:{i}" for r, s, i in grants],
                                                   "via": "cli"})
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc
    click.echo(f"created user {user.username} (id {user.id}) with roles {', '.join(roles)}")


@users_cli.command("disable")
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
def disable_user_command(username, reason):
    """Disable a console account: it cannot sign in, and its tokens and console sessions end at once."""
    from points_service.domain.accounts.users import disable_account

    _change_account(username, lambda user_id: disable_account(user_id, reason, detail={"via": "cli"}))
    click.echo(f"disabled user {username}")


@users_cli.command("enable")
@click.argument("username")
def enable_user_command(username):
    """Enable a disabled console account again; its user signs in afresh."""
    from points_service.domain.accounts.users import enable_account

    _change_account(username, lambda user_id: enable_account(user_id, detail={"via": "cli"}))
    click.echo(f"enabled user {username}")


@users_cli.command("unbind-wechat")
@click.argument("member_id", type=click.IntRange(1, MAX_ROW_ID))
@click.option("--reason", required=True, help="Why (kept in the audit trail; at most 200 characters).")
def unbind_wechat_command(member_id, reason):
    """Unbind a member's WeChat (by member id): that WeChat signs in unbound, his sessions end, he binds again."""
    from points_service.cli.operator import OPERATOR
    from points_service.domain.accounts.unbinding import unbind_wechat

    try:
        unbind_wechat(OPERATOR, member_id, reason, detail={"via": "cli"})  # commits
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc
    click.echo(f"unbound the WeChat of member {member_id}; his sessions have ended")


def _change_account(username: str, change) -> None:
    user_id = db.session.scalar(sa.select(User.id).where(User.username == username))
    if user_id is None:
        raise click.ClickException(f"no user named {username}")
    try:
        change(user_id)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc


def _grants(roles: tuple[str, ...], scope_ids: tuple[int, ...]) -> list[tuple[Role, ScopeType, int | None]]:
    """Pair each non-admin role with its --scope-id; a missing or a spare scope id is an operator error."""
    scoped = [Role(value) for value in roles if Role(value) is not Role.ADMIN]
    if len(scoped) != len(scope_ids):
        raise click.UsageError(f"give exactly one --scope-id per non-admin --role "
                               f"({len(scoped)} such roles, {len(scope_ids)} scope ids)")
    scopes = iter(scope_ids)
    return [(role, ROLE_SCOPE[role], None if role is Role.ADMIN else next(scopes))
            for role in (Role(value) for value in roles)]


def _describe(error: ServiceError) -> str:
    field_errors = (error.data or {}).get("errors", {})
    details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in field_errors.items())
    return f"{error.message} {details}".strip()
