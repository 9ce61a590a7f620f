"""Tokens: short-lived access tokens and rotating refresh tokens with reuse detection. Issued by the sign-in use
cases (``signin``), rotated by ``refresh_tokens``, revoked by logout (``revoke_family``) and by whatever ends an
account's sessions (``end_sessions``: disabling, deactivation, unbinding).

Token subjects: ``u:<user id>`` for accounts, ``w:<wechat identity id>`` for a WeChat user who has not
yet bound a roster member (such a token can only call /auth/bind).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
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
    family = family or uuid.uuid4().hex
    jti = uuid.uuid4().hex
    refresh = create_refresh_token(identity=subject, additional_claims={"fam": family, "jti": jti})
    claims = decode_token(refresh)
    db.session.add(RefreshToken(
        jti=jti, family=family, subject=subject,
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    ))
    return TokenPair(create_access_token(identity=subject, additional_claims=_version_claim(subject)), refresh)


def _version_claim(subject: str) -> dict:
    """An account's access tokens carry its token version, which the principal's statement reads anyway."""
    kind, _, raw_id = subject.partition(":")
    if kind != "u":
        return {}
    return {"ver": db.session.scalar(sa.select(User.token_version).where(User.id == int(raw_id))) or 0}


def refresh_tokens(claims: dict, *, request_id: str | None = None) -> TokenPair:
    """Rotate: the presented refresh token is spent; presenting a spent one revokes its whole family."""
    now = utcnow()
    token = db.session.get(RefreshToken, claims["jti"], with_for_update=True)
    if token is None or token.revoked_at is not None:
        raise TokenReused()
    if token.used_at is not None:
        _revoke_family_and_access(token.family, token.subject)
        audit("token.reuse", target_type="refresh_tokens", target_id=token.family, result="revoked",
              request_id=request_id)
        db.session.commit()
        raise TokenReused()
    if not _may_still_sign_in(token.subject):
        _revoke_where(RefreshToken.family == token.family)
        db.session.commit()
        raise MemberDeactivated() if member_deactivated(_user_of(token.subject)) else AccountDisabled()
    token.used_at = now
    pair = issue_tokens(token.subject, family=token.family)
    db.session.commit()
    return pair


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
