"""The refresh retry grace (``domain.accounts.tokens.refresh_tokens``): a refresh token rotated less than the grace
ago may be presented again, as a phone does when the answer to its refresh was lost. It gets a fresh pair and the
pair its first rotation issued (which never reached the phone) is revoked. Outside the grace, or once that successor
was itself used, presenting it is reuse as ever: the family is revoked.

Invariant, asserted after every step: a family holds at most one live refresh token (neither used nor revoked),
and exactly one while it is signed in."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.accounts.signin import bind_wechat
from points_service.domain.accounts.tokens import (
    MemberDeactivated,
    TokenPair,
    TokenReused,
    issue_tokens,
    refresh_tokens,
    revoke_family,
)
from points_service.domain.accounts.unbinding import unbind_wechat
from points_service.domain.accounts.users import disable_user, enable_user
from points_service.domain.lifecycle.status import deactivate_member, reactivate_member
from points_service.models import AuditEntry, DeactivationReason, RefreshToken
from tests.factories import make_member, make_wechat_identity, make_world

GRACE = 30


@pytest.fixture
def world(app):
    return make_world()


def sign_in(subject: str) -> TokenPair:
    pair = issue_tokens(subject)
    db.session.commit()
    return pair


def refresh(pair: TokenPair, grace: int = GRACE) -> TokenPair:
    return refresh_tokens(decode_token(pair.refresh_token), grace_seconds=grace)


def family_of(pair: TokenPair) -> str:
    return decode_token(pair.refresh_token)["fam"]


def live(family: str) -> list[str]:
    db.session.expire_all()
    return db.session.scalars(sa.select(RefreshToken.jti).where(
        RefreshToken.family == family, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))).all()


def jti(pair: TokenPair) -> str:
    return decode_token(pair.refresh_token)["jti"]


def actions() -> list[str]:
    return db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()


def test_a_retry_within_the_grace_gets_a_fresh_pair_and_the_lost_successor_is_revoked(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    lost = refresh(first)
    token_clock.advance(GRACE - 1)
    retried = refresh(first)
    assert retried.refresh_token not in (first.refresh_token, lost.refresh_token)
    assert decode_token(retried.refresh_token)["fam"] == family_of(first)
    assert live(family_of(first)) == [jti(retried)]
    assert db.session.get(RefreshToken, jti(lost)).revoked_at is not None
    assert refresh(retried).refresh_token  # the retried pair rotates as any other
    assert actions() == ["token.refresh_retry"]


def test_a_family_keeps_exactly_one_live_refresh_token_through_rotations_and_retries(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    family = family_of(first)
    assert live(family) == [jti(first)]
    second = refresh(first)
    assert live(family) == [jti(second)]
    for _ in range(3):  # the phone retries the same token again and again within the grace
        token_clock.advance(5)
        latest = refresh(first)
        assert live(family) == [jti(latest)]
    third = refresh(latest)
    assert live(family) == [jti(third)]
    token_clock.advance(5)
    fourth = refresh(latest)  # a retry of the newest spent token is allowed as well
    assert live(family) == [jti(fourth)]


def test_the_grace_counts_from_the_first_rotation_not_from_each_retry(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh(first)
    token_clock.advance(GRACE - 5)
    refresh(first)
    token_clock.advance(10)
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []


@pytest.mark.parametrize("late", [GRACE, GRACE + 1, 3600])
def test_after_the_grace_a_spent_token_is_reuse_and_its_family_is_revoked(world, token_clock, late):
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh(first)
    token_clock.advance(late)
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []
    reuse = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "token.reuse")).all()
    assert [(row.result, row.target_id) for row in reuse] == [("revoked", family_of(first))]
    assert "token.refresh_retry" not in actions()


def test_a_grace_of_zero_turns_the_grace_off(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh(first, grace=0)
    with pytest.raises(TokenReused):
        refresh(first, grace=0)
    assert live(family_of(first)) == []


def test_without_a_grace_argument_the_configured_one_applies(app, world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh_tokens(decode_token(first.refresh_token))
    assert app.config["REFRESH_REUSE_GRACE_SECONDS"] == 30
    assert refresh_tokens(decode_token(first.refresh_token)).refresh_token
    app.config["REFRESH_REUSE_GRACE_SECONDS"] = 0
    with pytest.raises(TokenReused):
        refresh_tokens(decode_token(first.refresh_token))


def test_once_the_successor_was_rotated_the_old_token_is_reuse_even_within_the_grace(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    second = refresh(first)
    refresh(second)  # the phone did receive the successor: a retry of the first is not the phone's
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []
    assert actions() == ["token.reuse"]


def test_the_successor_a_retry_replaced_is_reuse_if_it_shows_up(world, token_clock):
    """The phone never received it: whoever presents it copied it, so the family ends (the retry's holder too)."""
    first = sign_in(f"u:{world['users']['alice'].id}")
    lost = refresh(first)
    refresh(first)
    with pytest.raises(TokenReused):
        refresh(lost)
    assert live(family_of(first)) == []
    assert actions() == ["token.refresh_retry", "token.reuse"]


# Every way refresh tokens are revoked: a spent token of a revoked family stays dead within the grace.

def test_logout_is_not_undone_by_a_retry(world, token_clock):
    first = sign_in(f"u:{world['users']['alice'].id}")
    second = refresh(first)
    revoke_family(decode_token(second.refresh_token))
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []


def test_a_disabled_account_is_not_revived_by_a_retry_even_once_enabled_again(world, token_clock):
    secretary, admin = world["users"]["secretary"], principal_for(world["users"]["admin"])
    first = sign_in(f"u:{secretary.id}")
    refresh(first)
    disable_user(admin, secretary.id)
    with pytest.raises(TokenReused):
        refresh(first)
    enable_user(admin, secretary.id)
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []


def test_a_deactivated_member_is_not_revived_by_a_retry_even_once_reactivated(world, token_clock):
    alice, admin = world["alice"], principal_for(world["users"]["admin"])
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh(first)
    deactivate_member(admin, alice.id, DeactivationReason.RESIGNED, "离职", utcnow().date())
    with pytest.raises(MemberDeactivated):
        refresh(first)
    assert live(family_of(first)) == []
    reactivate_member(admin, alice.id, "返回")
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []


def test_an_unbound_identity_is_not_revived_by_a_retry(world, token_clock):
    make_wechat_identity("oAliceGrace01", world["users"]["alice"])
    db.session.commit()
    first = sign_in(f"u:{world['users']['alice'].id}")
    refresh(first)
    unbind_wechat(principal_for(world["users"]["admin"]), world["alice"].id, "换了微信号")
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []


def test_the_unbound_tokens_a_binding_ended_are_not_revived_by_a_retry(app, world, token_clock):
    make_member(world["fin1"], world["north"], name="刘洋", phone="13800138001")
    identity = make_wechat_identity("oNewGrace0001")
    db.session.commit()
    first = sign_in(f"w:{identity.id}")
    refresh(first)
    bind_wechat(identity.id, "刘洋", "13800138001", phone_key=app.config["PHONE_HASH_KEY"])
    with pytest.raises(TokenReused):
        refresh(first)
    assert live(family_of(first)) == []
