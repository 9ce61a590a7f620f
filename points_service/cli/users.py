"""``flask users create``: bootstrap console accounts without any default password."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from points_service.db import db
from points_service.domain.errors import ServiceError
from points_service.models import ROLE_SCOPE, Role

users_cli = AppGroup("users", help="Console accounts.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice([r.value for r in Role]),
              help="Role to grant; repeatable.")
@click.option("--scope-id", "scope_ids", multiple=True, type=int,
              help="Scope node id for each non-admin --role, in the same order.")
@click.option("--display-name", default="")
def create_user_command(username, roles, scope_ids, display_name):
    """Create a console user. The password comes from POINTS_NEW_USER_PASSWORD or a prompt."""
    from points_service.domain.accounts import add_user

    password = os.environ.get("POINTS_NEW_USER_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    scopes = iter(scope_ids)
    grants = []
    for value in roles:
        role = Role(value)
        grants.append((role, ROLE_SCOPE[role], None if role is Role.ADMIN else next(scopes, None)))
    try:
        user = add_user(username, password, grants, display_name)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.message} {exc.data or ''}".strip()) from exc
    click.echo(f"created user {user.username} (id {user.id}) with roles {', '.join(roles)}")
