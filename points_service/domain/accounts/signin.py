"""Sign-in use cases: console passwords with lockout, WeChat mini-program login and binding. The tokens they
issue (and their rotation and revocation) are ``tokens``'.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import NoReturn

import sqlalchemy as sa
from flask import current_app
from limits import RateLimitItem, RateLimitItemPerSecond
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from points_service.db import db, utcnow
from points_service.domain.accounts.tokens import (
    AccountDisabled,
    MemberDeactivated,
    TokenPair,
    issue_tokens,
    member_deactivated,
    revoke_access_tokens,
    revoke_subject,
)
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, RateLimited, ServiceError, Unauthorized
from points_service.domain.phones import BadPhone, hash_phone, normalize_phone
from points_service.integrations.wechat import WechatClient, WechatSession
from points_service.models import Member, User, WechatIdentity
from points_service.ratelimit import LoginThrottle


class BadCredentials(Unauthorized):
    code, message = "invalid_credentials", "用户名或密码错误"


@dataclass(frozen=True)
class LoginPolicy:
    """The lockout. ``max_failures`` wrong passwords for one username from one client address within
    ``lock_seconds`` lock that pair for ``lock_seconds``: the owner elsewhere is not locked out by a stranger.
    ``account_max_failures`` within ``account_window_seconds`` from all addresses together (a distributed
    guess) guard the account for that window: only addresses that signed it in during the last
    ``known_address_seconds`` may still try. Unknown usernames are counted and locked exactly alike."""
    max_failures: int
    lock_seconds: int
    account_max_failures: int = 50
    account_window_seconds: int = 3600
    known_address_seconds: int = 30 * 24 * 3600
    throttle: LoginThrottle | None = None

    @property
    def pair_window(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.max_failures, self.lock_seconds)

    @property
    def account_window(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.account_max_failures, self.account_window_seconds)


def login_policy(config) -> LoginPolicy:
    """The configured lockout over the app's rate-limit storage."""
    return LoginPolicy(config["LOGIN_MAX_FAILURES"], config["LOGIN_LOCK_SECONDS"],
                       config["LOGIN_ACCOUNT_MAX_FAILURES"], config["LOGIN_ACCOUNT_WINDOW_SECONDS"],
                       config["LOGIN_KNOWN_ADDRESS_DAYS"] * 24 * 3600, LoginThrottle.current())


def hash_password(password: str) -> str:
    # scrypt by default; the test settings choose a cheap method so that fixtures stay fast.
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def login_with_password(username: str, password: str, *, policy: LoginPolicy, client: str,
                        request_id: str | None = None) -> TokenPair:
    """``client`` is the caller's address: the lockout counts failures per (username, address)."""
    user = _authenticate(username, password, policy, client, request_id)
    tokens = issue_tokens(f"u:{user.id}")
    db.session.commit()
    return tokens


def console_sign_in(username: str, password: str, *, policy: LoginPolicy, client: str,
                    request_id: str | None = None) -> User:
    """The console's session sign-in: the same checks, lockout and audit as the API's, but no tokens
    (the console keeps the user id in its signed session cookie)."""
    user = _authenticate(username, password, policy, client, request_id, via="console")
    db.session.commit()
    return user


def console_sign_out(actor) -> None:
    """End every console session of the actor's account (``actor``: his Principal). A console session names the
    token version it was signed in under; moving the version on makes every copy of the cookie worthless, which
    clearing the browser's copy alone would not. The account's access tokens fail too (its refresh tokens still
    renew them)."""
    revoke_access_tokens(actor.user_id)
    audit("logout", actor=actor, target_type="users", target_id=actor.user_id, detail={"via": "console"})
    db.session.commit()


class LoginLocked(RateLimited):
    code, message = "login_locked", "登录失败次数过多，请稍后再试"


def _authenticate(username: str, password: str, policy: LoginPolicy, client: str, request_id: str | None,
                  via: str = "api") -> User:
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if retry := _locked_for(policy, username, client):
        # Known and unknown usernames are locked alike and answer alike, before any password is checked.
        audit("login", target_type="users", target_id=user.id if user else None, result="locked",
              request_id=request_id)
        db.session.commit()
        raise LoginLocked(retry_after=retry)
    if not _password_matches(user, password):
        _record_failure(user, username, client, policy, request_id)
        raise BadCredentials()
    _record_success(username, client, policy)
    if member_deactivated(user):
        audit("login", target=user, result="refused", request_id=request_id, detail={"reason": "member_deactivated"})
        db.session.commit()
        raise MemberDeactivated()
    audit("login", target=user, request_id=request_id, detail={"via": via} if via != "api" else None)
    return user


def _locked_for(policy: LoginPolicy, username: str, client: str) -> int | None:
    """Seconds this (username, address) must wait, or None: its own lock, or the account's guard unless the
    address has signed this account in before."""
    throttle = policy.throttle
    if throttle is None:
        return None
    if pair := throttle.marked_for("pair-lock", username, client):
        return pair
    guarded = throttle.marked_for("account-guard", username)
    return guarded if guarded and not throttle.marked_for("known-address", username, client) else None


def _record_success(username: str, client: str, policy: LoginPolicy) -> None:
    if policy.throttle is not None:
        policy.throttle.forget(policy.pair_window, "pair", username, client)
        policy.throttle.mark("known-address", username, client, seconds=policy.known_address_seconds)


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _password_matches(user: User | None, password: str) -> bool:
    # Unknown names and password-less accounts are checked against a decoy hash so that every
    # refusal costs the same time: the answer's timing must not tell which usernames exist.
    usable = user is not None and user.is_active and bool(user.password_hash)
    matches = check_password_hash(user.password_hash if usable else _decoy_hash(), password)
    return usable and matches


def _record_failure(user: User | None, username: str, client: str, policy: LoginPolicy,
                    request_id: str | None) -> None:
    if (throttle := policy.throttle) is not None:
        if throttle.count(policy.pair_window, "pair", username, client):
            throttle.mark("pair-lock", username, client, seconds=policy.lock_seconds)
        if throttle.count(policy.account_window, "account", username):
            throttle.mark("account-guard", username, seconds=policy.account_window_seconds)
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


def login_with_wechat(code: str, client: WechatClient, *, request_id: str | None = None,
                      per_identity: Callable[[str], None] | None = None) -> WechatLogin:
    """``per_identity(openid)`` may refuse (raise) a WeChat identity that signs in too often: it is called
    once the code has named the identity, before anything is written."""
    session = client.code2session(code)
    if per_identity is not None:
        per_identity(session.openid)
    try:
        return _sign_in_wechat(session)
    except IntegrityError:
        # A parallel first login of the same person (the mini-program may call wx.login twice at
        # start-up) created the identity first; WeChat has spent the code, so retry with it found.
        db.session.rollback()
        return _sign_in_wechat(session)


def _sign_in_wechat(session: WechatSession) -> WechatLogin:
    identity = db.session.scalar(sa.select(WechatIdentity).where(WechatIdentity.openid == session.openid))
    if identity is None:
        identity = WechatIdentity(openid=session.openid)
        db.session.add(identity)
    identity.session_key = session.session_key
    identity.unionid = session.unionid or identity.unionid
    identity.last_login_at = utcnow()
    db.session.flush()
    if identity.user is not None and not identity.user.is_active:
        db.session.commit()  # keep the fresh session_key: WeChat has already spent the code
        raise AccountDisabled()
    if member_deactivated(identity.user):
        db.session.commit()
        raise MemberDeactivated()
    subject = f"u:{identity.user_id}" if identity.user_id else f"w:{identity.id}"
    tokens = issue_tokens(subject)
    member = identity.user.member if identity.user else None
    db.session.commit()
    return WechatLogin(tokens, member)


class BindingFailed(NotFound):
    code, message = "member_not_found", "花名册中没有与姓名和手机号匹配的党员，请联系支部书记核对"


def bind_wechat(identity_id: int, name: str, phone: str, *, phone_key: str,
                request_id: str | None = None) -> WechatLogin:
    # The identity's row is held to the commit: of two binds from one WeChat user (to two members), the second
    # waits and then reads the first's binding (read committed would otherwise let it re-point the identity).
    identity = db.session.get(WechatIdentity, identity_id, with_for_update=True, populate_existing=True)
    if identity is None:
        raise Unauthorized()
    if identity.user_id is not None:
        raise Conflict("该微信已绑定党员身份", code="already_bound")
    member = _roster_member(name, phone, phone_key)
    if member is None:
        _refuse_binding(identity, BindingFailed(), request_id)
    try:
        return _attach(identity, member, request_id)
    except IntegrityError as exc:
        # Two identities raced for one member (or one account): the unique keys let only one win.
        db.session.rollback()
        raise MemberAlreadyBound() from exc


def _attach(identity: WechatIdentity, member: Member, request_id: str | None) -> WechatLogin:
    user = db.session.scalar(sa.select(User).where(User.member_id == member.id))
    if user is None:
        user = User(member_id=member.id, display_name=member.name)
        db.session.add(user)
        db.session.flush()
    elif db.session.scalar(sa.select(WechatIdentity.id).where(WechatIdentity.user_id == user.id)):
        _refuse_binding(identity, MemberAlreadyBound(), request_id)
    identity.user_id = user.id
    audit("wechat.bind", target=member, detail={"user_id": user.id}, request_id=request_id)
    # The unbound tokens have done their job: their refresh family must not outlive the binding.
    revoke_subject(f"w:{identity.id}")
    tokens = issue_tokens(f"u:{user.id}")
    db.session.commit()
    return WechatLogin(tokens, member)


class MemberAlreadyBound(Conflict):
    code, message = "member_already_bound", "该党员已绑定其他微信账号"


def _roster_member(name: str, phone: str, phone_key: str) -> Member | None:
    try:
        phone_hash = hash_phone(normalize_phone(phone), phone_key)
    except BadPhone:
        return None
    return db.session.scalar(
        sa.select(Member).where(Member.phone_hash == phone_hash, Member.name == name, Member.is_active)
    )


def _refuse_binding(identity: WechatIdentity, error: ServiceError, request_id: str | None) -> NoReturn:
    audit("wechat.bind", target_type="wechat_identities", target_id=identity.id, result="failed",
          detail={"reason": error.code}, request_id=request_id)
    db.session.commit()
    raise error


