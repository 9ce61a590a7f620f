"""Disabling and enabling console accounts (``domain.accounts.users``): admins only, audited, every session of a
disabled account ends at once and none revives on enabling; an admin cannot disable himself, a member's account
follows his status, and some active account always holds the admin role."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token
from sqlalchemy.exc import DBAPIError

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.accounts.tokens import issue_tokens, refresh_tokens
from points_service.domain.accounts.users import (
    AlreadyDisabled,
    AlreadyEnabled,
    LastAdmin,
    MemberAccount,
    OwnAccount,
    disable_account,
    disable_user,
    enable_user,
    grant_role,
    revoke_grant,
)
from points_service.domain.errors import Forbidden, NotFound, ServiceError
from points_service.models import AuditEntry, RefreshToken, Role, RoleGrant, ScopeType, User
from tests.concurrency import hammer
from tests.factories import make_user, make_world


@pytest.fixture
def world(app):
    world = make_world()
    world["deputy"] = make_user((Role.ADMIN, None), username="deputy")
    db.session.commit()
    return world


def actor(world, name: str = "admin"):
    user = world["deputy"] if name == "deputy" else world["users"][name]
    return principal_for(user)


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def audits(action: str) -> list[AuditEntry]:
    return db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)).all()


def admin_grant(user: User) -> RoleGrant:
    return next(g for g in user.grants if g.role == Role.ADMIN)


def test_disabling_marks_the_account_ends_its_sessions_and_is_audited(world):
    secretary = world["users"]["secretary"]
    issue_tokens(f"u:{secretary.id}")
    db.session.commit()
    version = secretary.token_version
    disable_user(actor(world), secretary.id, "  调离岗位  ")
    secretary = fresh(secretary)
    assert secretary.is_active is False and secretary.token_version == version + 1
    tokens = db.session.scalars(sa.select(RefreshToken).where(RefreshToken.subject == f"u:{secretary.id}")).all()
    assert tokens and all(token.revoked_at is not None for token in tokens)
    [entry] = audits("user.disable")
    assert entry.actor_id == world["users"]["admin"].id and entry.target_id == str(secretary.id)
    assert entry.detail == {"reason": "调离岗位"}


def test_enabling_restores_sign_in_but_no_session_and_is_audited(world):
    secretary = world["users"]["secretary"]
    disable_user(actor(world), secretary.id)
    version = fresh(secretary).token_version
    enable_user(actor(world), secretary.id)
    secretary = fresh(secretary)
    assert secretary.is_active is True and secretary.token_version == version + 1
    [entry] = audits("user.enable")
    assert entry.actor_id == world["users"]["admin"].id and entry.target_id == str(secretary.id)


def test_disabling_twice_or_enabling_an_enabled_account_is_409_and_changes_nothing(world):
    secretary = world["users"]["secretary"]
    with pytest.raises(AlreadyEnabled) as enabled:
        enable_user(actor(world), secretary.id)
    assert enabled.value.code == "user_already_enabled" and enabled.value.status == 409
    disable_user(actor(world), secretary.id)
    version = fresh(secretary).token_version
    with pytest.raises(AlreadyDisabled) as disabled:
        disable_user(actor(world), secretary.id)
    assert disabled.value.code == "user_already_disabled" and disabled.value.status == 409
    db.session.rollback()
    assert fresh(secretary).token_version == version and len(audits("user.disable")) == 1


def test_an_admin_cannot_disable_his_own_account(world):
    admin = world["users"]["admin"]
    with pytest.raises(OwnAccount) as refused:
        disable_user(actor(world), admin.id)
    assert refused.value.code == "own_account" and refused.value.status == 409
    assert "自己" in refused.value.message
    assert fresh(admin).is_active


@pytest.mark.parametrize("name", ["secretary", "community_admin", "hr"])
def test_only_admins_disable_or_enable(world, name):
    target = world["deputy"]
    with pytest.raises(Forbidden):
        disable_user(actor(world, name), target.id)
    with pytest.raises(Forbidden):
        enable_user(actor(world, name), target.id)
    assert fresh(target).is_active


def test_a_missing_account_is_404(world):
    with pytest.raises(NotFound):
        disable_user(actor(world), 999999)
    with pytest.raises(NotFound):
        enable_user(actor(world), 999999)


def test_a_members_account_follows_his_status_not_this_switch(world):
    alice = world["users"]["alice"]
    with pytest.raises(MemberAccount) as refused:
        disable_user(actor(world), alice.id)
    assert refused.value.code == "member_account" and refused.value.status == 409
    assert fresh(alice).is_active


def test_the_last_active_admin_cannot_be_disabled(world):
    disable_user(actor(world), world["deputy"].id)
    # Only "admin" is left: the operator's path too (no actor, no own-account rule) must refuse him.
    with pytest.raises(LastAdmin) as refused:
        disable_account(world["users"]["admin"].id)
    assert refused.value.code == "last_admin" and refused.value.status == 409
    db.session.rollback()
    assert fresh(world["users"]["admin"]).is_active


def test_another_admin_may_be_disabled_while_one_stays_active(world):
    disable_user(actor(world), world["deputy"].id)
    assert fresh(world["deputy"]).is_active is False


def test_an_admin_grant_may_be_revoked_while_another_active_admin_holds_one(world):
    admin = world["users"]["admin"]
    revoke_grant(actor(world, "deputy"), admin.id, admin_grant(admin).id)
    assert not fresh(admin).grants


def test_a_disabled_admins_grant_may_be_revoked(world):
    deputy = world["deputy"]
    disable_user(actor(world), deputy.id)
    revoke_grant(actor(world), deputy.id, admin_grant(fresh(deputy)).id)  # takes no active admin away
    assert not fresh(deputy).grants


def test_the_last_active_admins_admin_grant_cannot_be_revoked(world):
    deputy, admin = world["deputy"], world["users"]["admin"]
    db.session.execute(sa.update(User).where(User.id == admin.id).values(is_active=False))
    db.session.commit()
    # The acting admin was disabled while his request was in flight: the deputy is the last active admin.
    with pytest.raises(LastAdmin) as refused:
        revoke_grant(actor(world), deputy.id, admin_grant(deputy).id)
    assert refused.value.status == 409 and "管理员" in refused.value.message
    db.session.rollback()
    assert admin_grant(fresh(deputy))


def test_granting_the_admin_role_again_makes_the_former_last_admin_disableable(world):
    disable_user(actor(world), world["deputy"].id)
    secretary = world["users"]["secretary"]
    grant_role(actor(world), secretary.id, Role.ADMIN, ScopeType.CITY, None)
    disable_user(principal_for(fresh(secretary)), world["users"]["admin"].id)
    assert fresh(world["users"]["admin"]).is_active is False


@pytest.mark.postgres
def test_two_admins_disabling_each_other_at_once_leave_one_active(app, world):
    admin_id, deputy_id = world["users"]["admin"].id, world["deputy"].id

    def disable(actor_id: int, target_id: int):
        def call():
            try:
                disable_user(principal_for(db.session.get(User, actor_id)), target_id)
            except LastAdmin:
                return "last_admin"
            return "disabled"
        return call

    for _ in range(5):
        outcomes = hammer(app, [disable(admin_id, deputy_id), disable(deputy_id, admin_id)], workers=2)
        assert sorted(outcomes) == ["disabled", "last_admin"]
        db.session.execute(sa.update(User).values(is_active=True))
        db.session.commit()


@pytest.mark.postgres
def test_a_refresh_racing_a_disable_leaves_no_usable_refresh_token(app, world):
    """A refresh in flight while the account is disabled either is refused or has its new token revoked too:
    enabling the account later revives nothing (a deadlock between the two aborts one: nothing half-done)."""
    secretary_id, admin_id = world["users"]["secretary"].id, world["users"]["admin"].id
    for _ in range(10):
        claims = decode_token(issue_tokens(f"u:{secretary_id}").refresh_token)
        db.session.commit()

        def refresh(claims=claims):
            with contextlib.suppress(ServiceError, DBAPIError):
                refresh_tokens(claims)

        def disable():
            with contextlib.suppress(DBAPIError):
                disable_user(principal_for(db.session.get(User, admin_id)), secretary_id)

        hammer(app, [refresh, disable], workers=2)
        db.session.expire_all()
        if not db.session.get(User, secretary_id).is_active:
            live = sa.select(RefreshToken).where(RefreshToken.subject == f"u:{secretary_id}",
                                                 RefreshToken.revoked_at.is_(None))
            assert db.session.scalars(live).all() == []
            enable_user(principal_for(db.session.get(User, admin_id)), secretary_id)
