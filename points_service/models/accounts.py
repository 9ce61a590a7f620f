"""Who can sign in: console users, role grants scoped to a node, WeChat identities, refresh tokens."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points_service.db import UTCDateTime, db, enum_column, utcnow
from points_service.models.people import Member


class Role(enum.StrEnum):
    BRANCH_SECRETARY = "branch_secretary"  # 支部书记: scope = a branch
    ORG_ADMIN = "org_admin"  # 部门党组织管理员: scope = a department organization subtree
    COMMUNITY_ADMIN = "community_admin"  # 社区管理员: scope = a community
    HR = "hr"  # 单位人事/组织部: scope = an organization subtree
    ADMIN = "admin"  # 系统管理员: scope = the whole city


class ScopeType(enum.StrEnum):
    ORGANIZATION = "organization"
    REGION = "region"
    CITY = "city"


ROLE_SCOPE = {
    Role.BRANCH_SECRETARY: ScopeType.ORGANIZATION,
    Role.ORG_ADMIN: ScopeType.ORGANIZATION,
    Role.COMMUNITY_ADMIN: ScopeType.REGION,
    Role.HR: ScopeType.ORGANIZATION,
    Role.ADMIN: ScopeType.CITY,
}


class User(db.Model):
    """An account. Console users have a username and password; members signing in through WeChat
    get an account linked to their roster row (``member_id``) and no password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.String(50), default="")
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Access tokens carry it (claim ``ver``); bumping it makes every access token issued before fail at once.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    member: Mapped[Member | None] = relationship()
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", foreign_keys="RoleGrant.user_id", cascade="all, delete-orphan"
    )


class RoleGrant(db.Model):
    __tablename__ = "role_grants"
    __table_args__ = (sa.UniqueConstraint("user_id", "role", "scope_type", "scope_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "role", 32))
    scope_type: Mapped[ScopeType] = mapped_column(enum_column(ScopeType, "scope_type"))
    scope_id: Mapped[int | None] = mapped_column()
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User] = relationship(back_populates="grants", foreign_keys=[user_id])


class WechatIdentity(db.Model):
    """A mini-program user. ``session_key`` stays here: it never leaves the server."""

    __tablename__ = "wechat_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(sa.String(64))
    session_key: Mapped[str | None] = mapped_column(sa.String(128))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship()


class RefreshToken(db.Model):
    """One row per issued refresh token; a family shares one login. Reusing a used token revokes
    the whole family (refresh-token rotation with reuse detection), unless it is a retry within the grace
    (``domain/accounts/tokens.py``). A family holds at most one live token (neither used nor revoked)."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family: Mapped[str] = mapped_column(sa.String(64), index=True)
    subject: Mapped[str] = mapped_column(sa.String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The token that took this one's place: its rotation's (a retry moves it to the retry's), or, on a token a
    # retry revoked, the retry's. A retry finds here the successor it replaces.
    replaced_by: Mapped[str | None] = mapped_column(sa.String(64))
