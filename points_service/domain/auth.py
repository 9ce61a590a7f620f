"""Sign-in use cases: console passwords with lockout, WeChat mini-program login and binding,
short-lived access tokens and rotating refresh tokens with reuse detection.

Token subjects: ``u:<user id>`` for accounts, ``w:<wechat identity id>`` for a WeChat user who has not
yet bound a roster member (such a token can only call /auth/bind and /me).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from werkzeug.security import check_password_hash, generate_password_hash

from points_service.db import db, utcnow
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, RateLimited, Unauthorized
from points_service.domain.phones import BadPhone, hash_phone, normalize_phone
from points_service.integrations.wechat import WechatClient
from points_service.models import Member, RefreshToken, User, WechatIdentity


class BadCredentials(Unauthorized):
    code, message = "invalid_credentials", "用户名或密码错误"


class TokenReused(Unauthorized):
    code, message = "refresh_token_reused", "登录状态已失效，请重新登录"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int
    lock_seconds: int


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def login_with_password(username: str, password: str, *, policy: LoginPolicy, request_id: str | None = None,
                        now: datetime | None = None) -> TokenPair:
    now = now or utcnow()
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user and user.locked_until and user.locked_until > now:
        retry = int((user.locked_until - now).total_seconds()) + 1
        audit("login", target=user, result="locked", request_id=request_id)
        db.session.commit()
        raise RateLimited("登录失败次数过多，账号已暂时锁定", code="login_locked", retry_after=retry)
    if not (user and user.is_active and user.password_hash and check_password_hash(user.password_hash, password)):
        _record_failure(user, policy, now, request_id)
        raise BadCredentials()
    user.failed_logins, user.locked_until = 0, None
    audit("login", target=user, request_id=request_id)
    tokens = issue_tokens(f"u:{user.id}")
    db.session.commit()
    return tokens


def _record_failure(user: User | None, policy: LoginPolicy, now: datetime, request_id: str | None) -> None:
    if user is not None:
        # In-SQL increment: concurrent wrong guesses cannot lose a count.
        db.session.execute(sa.update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1))
        db.session.refresh(user)
        if user.failed_logins >= policy.max_failures:
            user.locked_until = now + timedelta(seconds=policy.lock_seconds)
            user.failed_logins = 0
    audit("login", target_type="users", target_id=user.id if user else None, result="failed",
          request_id=request_id)
    db.session.commit()


@dataclass(frozen=True)
class WechatLogin:
    tokens: TokenPair
    member: Member | None

    @property
    def needs_binding(self) -> bool:
        return self.member is None


def login_with_wechat(code: str, client: WechatClient, *, request_id: str | None = None) -> WechatLogin:
    session = client.code2session(code)
    identity = db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.openid == session.openid))
    if identity is None:
        identity = WechatIdentity(openid=session.openid)
        db.session.add(identity)
    identity.session_key = session.session_key
    identity.unionid = session.unionid or identity.unionid
    identity.last_login_at = utcnow()
    db.session.flush()
    subject = f"u:{identity.user_id}" if identity.user_id else f"w:{identity.id}"
    tokens = issue_tokens(subject)
    member = identity.user.member if identity.user else None
    db.session.commit()
    return WechatLogin(tokens, member)


class BindingFailed(NotFound):
    code, message = "member_not_found", "花名册中没有与姓名和手机号匹配的党员，请联系支部书记核对"


def bind_wechat(identity_id: int, name: str, phone: str, *, phone_key: str,
                request_id: str | None = None) -> WechatLogin:
    identity = db.session.get(WechatIdentity, identity_id)
    if identity is None:
        raise Unauthorized()
    if identity.user_id is not None:
        raise Conflict("该微信已绑定党员身份", code="already_bound")
    try:
        phone_hash = hash_phone(normalize_phone(phone), phone_key)
    except BadPhone as exc:
        raise BindingFailed() from exc
    member = db.session.scalar(
        sa.select(Member).where(Member.phone_hash == phone_hash, Member.name == name, Member.is_active)
    )
    if member is None:
        audit("wechat.bind", target_type="wechat_identities", target_id=identity.id, result="failed",
              request_id=request_id)
        db.session.commit()
        raise BindingFailed()
    user = db.session.scalar(sa.select(User).where(User.member_id == member.id))
    if user is None:
        user = User(member_id=member.id, display_name=member.name)
        db.session.add(user)
        db.session.flush()
    elif db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.user_id == user.id)):
        raise Conflict("该党员已绑定其他微信账号", code="member_already_bound")
    identity.user_id = user.id
    audit("wechat.bind", target=member, detail={"user_id": user.id}, request_id=request_id)
    tokens = issue_tokens(f"u:{user.id}")
    db.session.commit()
    return WechatLogin(tokens, member)


def issue_tokens(subject: str, family: str | None = None) -> TokenPair:
    """Create an access token and a refresh token (recorded for rotation). Only flushes."""
    family = family or uuid.uuid4().hex
    jti = uuid.uuid4().hex
    refresh = create_refresh_token(identity=subject, additional_claims={"fam": family, "jti": jti})
    claims = decode_token(refresh)
    db.session.add(RefreshToken(
        jti=jti, family=family, subject=subject,
        expires_at=datetime.fromtimestamp(claims["exp"], tz=timezone.utc),
    ))
    return TokenPair(create_access_token(identity=subject), refresh)


def refresh_tokens(claims: dict, *, request_id: str | None = None) -> TokenPair:
    """Rotate: the presented refresh token is spent; presenting a spent one revokes its whole family."""
    now = utcnow()
    token = db.session.get(RefreshToken, claims["jti"], with_for_update=True)
    if token is None or token.revoked_at is not None:
        raise TokenReused()
    if token.used_at is not None:
        db.session.execute(
            sa.update(RefreshToken).where(RefreshToken.family == token.family).values(revoked_at=now)
        )
        audit("token.reuse", target_type="refresh_tokens", target_id=token.family, result="revoked",
              request_id=request_id)
        db.session.commit()
        raise TokenReused()
    token.used_at = now
    pair = issue_tokens(token.subject, family=token.family)
    db.session.commit()
    return pair


def revoke_family(claims: dict) -> None:
    db.session.execute(
        sa.update(RefreshToken).where(RefreshToken.family == claims.get("fam")).values(revoked_at=utcnow())
    )
    db.session.commit()
