"""``flask users create``: console accounts from the command line, never with a default password; ``flask users
disable`` and ``enable``: the operator's switch when no admin can sign in."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from points_service.db import db
from points_service.models import AuditEntry, Role, ScopeType, User
from tests.factories import PASSWORD, make_user, make_world

STRONG = "Jining-Admin-2026"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(app):
    return make_world()


def create(app, *args, password: str | None = STRONG, stdin: str | None = None):
    env = {"POINTS_NEW_USER_PASSWORD": password} if password is not None else {"POINTS_NEW_USER_PASSWORD": ""}
    return app.test_cli_runner().invoke(args=["users", "create", *args], env=env, input=stdin)


def find(username: str) -> User | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def test_an_admin_is_created_with_the_password_from_the_environment(app):
    result = create(app, "root", "--role", "admin")
    assert result.exit_code == 0, result.output
    user = find("root")
    assert [(g.role, g.scope_type, g.scope_id) for g in user.grants] == [(Role.ADMIN, ScopeType.CITY, None)]
    assert check_password_hash(user.password_hash, STRONG)
    assert STRONG not in result.output


def test_the_new_admin_can_sign_in_to_the_console(app, client):
    create(app, "root", "--role", "admin")
    response = client.post("/api/v1/auth/login", json={"username": "root", "password": STRONG})
    assert response.status_code == 200


def test_creation_is_audited(app):
    create(app, "root", "--role", "admin")
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.create"))
    assert entry.target_id == str(find("root").id) and entry.detail["via"] == "cli"
    assert STRONG not in str(entry.detail)


@pytest.mark.parametrize("password", ["short1", "onlyletters", "1234567890123", "abcdefghij"])
def test_a_weak_password_is_refused_and_nothing_is_created(app, password):
    result = create(app, "root", "--role", "admin", password=password)
    assert result.exit_code != 0
    assert "密码" in result.output
    assert find("root") is None


def test_a_scoped_role_requires_a_scope_id(app, world):
    result = create(app, "sec", "--role", "branch_secretary")
    assert result.exit_code != 0 and "--scope-id" in result.output
    assert find("sec") is None


def test_a_spare_scope_id_is_refused_rather_than_ignored(app, world):
    result = create(app, "root", "--role", "admin", "--scope-id", str(world["fin1"].id))
    assert result.exit_code != 0 and find("root") is None


def test_a_scoped_role_gets_its_scope(app, world):
    result = create(app, "sec", "--role", "branch_secretary", "--scope-id", str(world["fin1"].id),
                    "--role", "community_admin", "--scope-id", str(world["north"].id))
    assert result.exit_code == 0, result.output
    grants = {(g.role, g.scope_id) for g in find("sec").grants}
    assert grants == {(Role.BRANCH_SECRETARY, world["fin1"].id), (Role.COMMUNITY_ADMIN, world["north"].id)}


def test_a_scope_of_the_wrong_kind_or_missing_is_refused(app, world):
    assert create(app, "sec", "--role", "branch_secretary", "--scope-id", "999999").exit_code != 0
    assert find("sec") is None


@pytest.mark.parametrize("username", ["ab", "x" * 65, "张三", "root admin", "root\n", "root;", ""])
def test_a_username_the_console_would_refuse_is_a_usage_error(app, username):
    result = create(app, username, "--role", "admin")
    assert result.exit_code == 2 and "3–64" in result.output and "Traceback" not in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count(User.id)).where(User.username.is_not(None))) == 0


@pytest.mark.parametrize("scope_id", ["99999999999999999999", "2147483648", "0", "-1"])
def test_a_scope_id_out_of_range_is_a_usage_error_not_a_crash(app, world, scope_id):
    result = create(app, "sec", "--role", "branch_secretary", "--scope-id", scope_id)
    assert result.exit_code == 2 and "--scope-id" in result.output, (result.output, result.exception)
    assert find("sec") is None


def test_a_duplicate_username_is_refused(app):
    make_user(username="root")
    db.session.commit()
    result = create(app, "root", "--role", "admin")
    assert result.exit_code != 0 and "用户名已存在" in result.output


def test_without_the_environment_variable_the_password_is_asked_for(app):
    result = create(app, "root", "--role", "admin", password=None, stdin=f"{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output
    assert check_password_hash(find("root").password_hash, STRONG)


def test_with_no_password_given_at_all_no_account_is_created(app):
    result = create(app, "root", "--role", "admin", password=None, stdin="")
    assert result.exit_code != 0
    assert find("root") is None


def test_there_is_no_default_password_in_the_code_or_config():
    # Only tests may hold a fixed password (tests/factories.PASSWORD).
    sources = [*(REPO / "points_service").rglob("*.py"), *(REPO / "config").rglob("*")]
    for path in sources:
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".toml", ".env", ".cfg", ".ini"}:
            text = path.read_text(encoding="utf-8").lower()
            for needle in ("new_user_password\", \"", "default_password", "password=\"admin", "admin123"):
                assert needle not in text, f"{path} looks like it ships a default password"


@pytest.mark.parametrize("password", ["!!!!!!!!!!!!", "----------1", "aaaa-bbbb-cccc"])
def test_a_password_needs_both_letters_and_digits(app, password):
    assert create(app, "root", "--role", "admin", password=password).exit_code != 0
    assert find("root") is None


def switch(app, action: str, *args):
    return app.test_cli_runner().invoke(args=["users", action, *args])


def test_the_operator_disables_and_enables_an_account_audited(app, world):
    secretary = make_user((Role.BRANCH_SECRETARY, world["fin1"].id), username="sec")
    db.session.commit()
    version = secretary.token_version
    disabled = switch(app, "disable", "sec", "--reason", "调离")
    assert disabled.exit_code == 0, disabled.output
    user = find("sec")
    assert user.is_active is False and user.token_version == version + 1
    enabled = switch(app, "enable", "sec")
    assert enabled.exit_code == 0, enabled.output
    assert find("sec").is_active is True
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action.in_(["user.disable", "user.enable"]))
                                 .order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor_id, e.detail) for e in entries] == [
        ("user.disable", None, {"reason": "调离", "via": "cli"}), ("user.enable", None, {"via": "cli"})]


def test_the_operator_enables_the_only_admin_when_no_admin_can_sign_in(app, client):
    make_user((Role.ADMIN, None), username="root")
    db.session.execute(sa.update(User).where(User.username == "root").values(is_active=False))
    db.session.commit()
    assert client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD}).status_code == 401
    assert switch(app, "enable", "root").exit_code == 0
    assert client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD}).status_code == 200


def test_the_last_active_admin_cannot_be_disabled_from_the_command_line_either(app):
    make_user((Role.ADMIN, None), username="root")
    db.session.commit()
    result = switch(app, "disable", "root")
    assert result.exit_code != 0 and "最后一个" in result.output
    assert find("root").is_active is True


@pytest.mark.parametrize(("action", "expected"), [("disable", "该账号已停用"), ("enable", "无需启用")])
def test_a_repeated_switch_or_an_unknown_username_fails(app, action, expected):
    make_user(username="sec")
    make_user((Role.ADMIN, None), username="root")
    db.session.commit()
    if action == "disable":
        switch(app, "disable", "sec")
    result = switch(app, action, "sec")
    assert result.exit_code != 0 and expected in result.output
    missing = switch(app, action, "nobody")
    assert missing.exit_code != 0 and "no user named nobody" in missing.output
