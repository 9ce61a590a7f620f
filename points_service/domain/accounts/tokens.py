"""Tokens: short-lived access tokens and rotating refresh tokens with reuse detection. Issued by the sign-in use
cases (``signin``), rotated by ``refresh_tokens``, revoked by logout (``revoke_family``) and by whatever ends an
account's sessions (``end_sessions``: disabling, deactivation, unbinding).

Token subjects: ``u:<user id>`` for accounts, ``w:<wechat identity id>`` for a WeChat user who has not
yet bound a roster member (such a token can only call /auth/bind).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import sqlalchemy as sa
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from points_service.db import db, utcnow
from points_service.domain.audit import audit
from points_service.domain.errors import Forbidden, Unauthorized
from points_service.models import RefreshToken, User


class TokenReused(Unauthorized):
    code, message = "refresh_token_reused", "登录状态已失效，请重新登录"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


def issue_tokens(subject: str, family: str | None = None) -> TokenPair:
    """Create an access token and a refresh token (recorded for rotation). Only flushes."""
    return _issue(subject, family or uuid.uuid4().hex)[0]


def _issue(subject: str, family: str) -> tuple[TokenPair, RefreshToken]:
    jti = uuid.uuid4().hex
    refresh = create_refresh_token(identity=subject, additional_claims={"fam": family, "jti": jti})
    claims = decode_token(refresh)
    row = RefreshToken(jti=jti, family=family, subject=subject,
                       expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC))
    db.session.add(row)
    access = create_access_token(identity=subject, additional_claims=_version_claim(subject))
    return TokenPair(access, refresh), row


def _version_claim(subject: str) -> dict:
    """An account's access tokens carry its token version, which the principal's statement reads anyway."""
    kind, _, raw_id = subject.partition(":")
    if kind != "u":
        return {}
    return {"ver": db.session.scalar(sa.select(User.token_version).where(User.id == int(raw_id))) or 0}


def refresh_tokens(claims: dict, *, grace_seconds: int | None = None, request_id: str | None = None) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair issued in its family. Presenting a spent one
    again is reuse and revokes the whole family, unless it is a retry after a lost answer: the token was rotated
    less than ``grace_seconds`` ago (None: the configured REFRESH_REUSE_GRACE_SECONDS; 0: no grace) and the
    successor it got is still unused. The retry gets a fresh pair and that successor is revoked, so that a
    family holds at most one live refresh token (neither used nor revoked), exactly one while signed in. A
    revoked token (logout, disabling, deactivation, unbinding, reuse) is never revived."""
    now = utcnow()
    # Locked to the commit: a second refresh of the same token waits, then finds it spent (a retry, or reuse).
    token = db.session.get(RefreshToken, claims["jti"], with_for_update=True, populate_existing=True)
    if token is None:
        raise TokenReused()
    if token.revoked_at is not None:
        _refuse_revoked(token, request_id)
    successor = None
    if token.used_at is not None:
        successor = _retry_successor(token, now, _grace(grace_seconds))
        if successor is None:
            _refuse_reuse(token, request_id)
    _check_may_still_sign_in(token)
    return _rotate(token, now) if successor is None else _retry(token, successor, now, request_id)


def _grace(grace_seconds: int | None) -> timedelta:
    seconds = current_app.config["REFRESH_REUSE_GRACE_SECONDS"] if grace_seconds is None else grace_seconds
    return timedelta(seconds=seconds)


def _retry_successor(token: RefreshToken, now: datetime, grace: timedelta) -> RefreshToken | None:
    """The live successor that a retry of the spent ``token`` replaces, or None when it is no retry: the grace is
    over (counted from the first rotation, not from each retry) or the successor was used (so it reached its
    holder) or revoked."""
    if token.replaced_by is None or now - token.used_at >= grace:
        return None
    # Locked after the token, the order every retry takes: a rotation of the successor running now commits first
    # (and the successor is seen used here) or waits for this retry (and finds it revoked: reuse). A family
    # revocation running now locks the family's rows in no set order and may deadlock with this: PostgreSQL aborts
    # one (503 database_busy, rolled back whole) and the other ends the family.
    successor = db.session.get(RefreshToken, token.replaced_by, with_for_update=True, populate_existing=True)
    return successor if successor is not None and successor.used_at is None and successor.revoked_at is None else None


def _rotate(token: RefreshToken, now: datetime) -> TokenPair:
    pair, issued = _issue(token.subject, token.family)
    token.used_at, token.replaced_by = now, issued.jti
    db.session.commit()
    return pair


def _retry(token: RefreshToken, successor: RefreshToken, now: datetime, request_id: str | None) -> TokenPair:
    """The answer that carried ``successor`` never arrived: it is revoked and a fresh pair takes its place. The
    access token it came with is left to expire (≤ 15 min): moving the token version on would sign the account's
    other devices out too."""
    pair, issued = _issue(token.subject, token.family)
    successor.revoked_at, successor.replaced_by = now, issued.jti
    token.replaced_by = issued.jti
    audit("token.refresh_retry", target_type="refresh_tokens", target_id=token.family, request_id=request_id,
          detail={"seconds_since_rotation": int((now - token.used_at).total_seconds())})
    db.session.commit()
    return pair


def _refuse_revoked(token: RefreshToken, request_id: str | None) -> NoReturn:
    # A successor a retry replaced never reached the phone that retried: whoever presents it while the family is
    # still signed in holds a copy, which is reuse.
    if token.used_at is None and token.replaced_by is not None and _signed_in(token.family):
        _refuse_reuse(token, request_id)
    raise TokenReused()


def _refuse_reuse(token: RefreshToken, request_id: str | None) -> NoReturn:
    _revoke_family_and_access(token.family, token.subject)
    audit("token.reuse", target_type="refresh_tokens", target_id=token.family, result="revoked",
          request_id=request_id)
    db.session.commit()
    raise TokenReused()


def _signed_in(family: str) -> bool:
    return db.session.scalar(sa.select(RefreshToken.jti).where(
        RefreshToken.family == family, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None)
    ).limit(1)) is not None


def _check_may_still_sign_in(token: RefreshToken) -> None:
    if not _may_still_sign_in(token.subject):
        _revoke_where(RefreshToken.family == token.family)
        db.session.commit()
        raise MemberDeactivated() if member_deactivated(_user_of(token.subject)) else AccountDisabled()


class AccountDisabled(Forbidden):
    code, message = "account_disabled", "账号已停用，请联系支部书记"


class MemberDeactivated(AccountDisabled):
    code, message = "member_deactivated", "党员身份已停用（离职、退休或组织关系转出），不能登录"


def member_deactivated(user: User | None) -> bool:
    """A member's account stops with his membership (``domain/lifecycle``); console-only accounts have none."""
    return user is not None and user.member is not None and not user.member.is_active


def _user_of(subject: str, **options) -> User | None:
    kind, _, raw_id = subject.partition(":")
    return db.session.get(User, int(raw_id), **options) if kind == "u" else None


def _may_still_sign_in(subject: str) -> bool:
    if not subject.startswith("u:"):
        return True  # unbound WeChat families end when the identity binds
    # Shared-locked: a refresh waits for an account being disabled (``end_sessions``), which waits for it.
    user = _user_of(subject, with_for_update={"read": True})
    return user is not None and user.is_active and not member_deactivated(user)


def revoke_family(claims: dict, *, request_id: str | None = None) -> None:
    """Log out: the refresh token's family is revoked and the account's access tokens fail at once (its token
    version moves on; another device's refresh token still gets it fresh tokens)."""
    _revoke_family_and_access(claims.get("fam"), str(claims.get("sub", "")))
    audit("logout", target_type="refresh_tokens", target_id=claims.get("fam"), request_id=request_id)
    db.session.commit()


def _revoke_family_and_access(family: str | None, subject: str) -> None:
    _revoke_where(RefreshToken.family == family)
    kind, _, raw_id = subject.partition(":")
    if kind == "u" and raw_id.isascii() and raw_id.isdigit():  # as api/security.py reads a subject
        revoke_access_tokens(int(raw_id))


def end_sessions(user_id: int) -> None:
    """Every session of the account ends: its refresh tokens are revoked, and its token version moves on, so its
    access tokens and console sessions fail. Only flushes. The caller locks the account's row first: a refresh in
    flight shares that lock until it commits, so the tokens it issues are revoked here too (one caught holding
    the refresh token this revokes deadlocks with it, and PostgreSQL aborts one of the two: nothing half-done)."""
    revoke_access_tokens(user_id)
    revoke_subject(f"u:{user_id}")


def revoke_access_tokens(user_id: int) -> None:
    """Every access token issued to the account so far fails from now on. Only flushes."""
    db.session.execute(sa.update(User).where(User.id == user_id).values(token_version=User.token_version + 1))


def revoke_subject(subject: str) -> None:
    """Every refresh token issued to the subject is revoked. Only flushes."""
    _revoke_where(RefreshToken.subject == subject)


def _revoke_where(condition) -> None:
    db.session.execute(
        sa.update(RefreshToken).where(condition, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
