"""POST /auth/wechat, /auth/bind, /auth/login, /auth/refresh, /auth/logout."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, g
from flask_jwt_extended import get_jwt, jwt_required

from points_service import ratelimit, replicas
from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Phone
from points_service.api.security import wechat_token_required
from points_service.api.structure import MemberSchema
from points_service.domain.accounts import signin as auth
from points_service.domain.accounts import tokens
from points_service.domain.errors import Conflict
from points_service.integrations.wechat import WechatClient

blp = Blueprint("auth", __name__, url_prefix="/auth", description="登录与令牌")


class WechatLoginArgs(ma.Schema):
    code = CleanString(required=True, max_length=128)


class PasswordLoginArgs(ma.Schema):
    username = CleanString(required=True, max_length=64)
    password = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=128))


class BindArgs(ma.Schema):
    name = CleanString(required=True, max_length=50)
    phone = Phone(required=True)


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()


class WechatLoginSchema(TokenSchema):
    member = ma.fields.Nested(MemberSchema, allow_none=True)
    needs_binding = ma.fields.Boolean()


def _flatten(login: auth.WechatLogin) -> dict:
    return {**vars(_issued(login.tokens)), "member": login.member, "needs_binding": login.needs_binding}


def _issued(pair: tokens.TokenPair) -> tokens.TokenPair:
    """Tokens this request signs an account in with: its reads stay on the primary a while (replicas.py)."""
    replicas.signed_in(pair.access_token)
    return pair


def _per_openid(openid: str) -> None:
    ratelimit.hit("RATELIMIT_WECHAT_PER_OPENID", openid)


def _by_token_subject() -> tuple[str, int]:
    """The WeChat identity (or account) the bearer token names: binding guesses are counted per identity."""
    return g.token_subject


@blp.route("/wechat", methods=["POST"])
@ratelimit.limit("RATELIMIT_WECHAT_PER_IP", ratelimit.by_address)
@blp.arguments(WechatLoginArgs)
@blp.response(200, WechatLoginSchema)
def wechat_login(args):
    """小程序登录：用 wx.login 的 code 换取令牌（按来源地址和微信身份限流）"""
    client = WechatClient.from_config(current_app.config)
    return _flatten(auth.login_with_wechat(args["code"], client, request_id=g.request_id, per_identity=_per_openid))


@blp.route("/bind", methods=["POST"])
@wechat_token_required
@ratelimit.limit("RATELIMIT_BIND_PER_OPENID", _by_token_subject)
@blp.arguments(BindArgs)
@blp.response(200, WechatLoginSchema)
def bind(args):
    """把当前微信身份绑定到花名册中的党员（姓名 + 手机号；按微信身份限制尝试次数）"""
    kind, identity_id = g.token_subject
    if kind != "w":
        raise Conflict("该微信已绑定党员身份", code="already_bound")
    login = auth.bind_wechat(identity_id, args["name"], args["phone"],
                             phone_key=current_app.config["PHONE_HASH_KEY"], request_id=g.request_id)
    return _flatten(login)


@blp.route("/login", methods=["POST"])
@ratelimit.limit("RATELIMIT_LOGIN_PER_IP", ratelimit.by_address)
@blp.arguments(PasswordLoginArgs)
@blp.response(200, TokenSchema)
@blp.alt_response(503, description="service_unavailable：登录锁定所用的存储（Redis）不可用，拒绝登录，未写入任何数据")
def password_login(args):
    """控制台用户名密码登录（同一来源地址连续失败后暂时锁定该用户名）"""
    policy = auth.login_policy(current_app.config)
    return vars(_issued(auth.login_with_password(args["username"], args["password"], policy=policy,
                                                 client=ratelimit.client_address(), request_id=g.request_id)))


@blp.route("/refresh", methods=["POST"])
@jwt_required(refresh=True)
@blp.response(200, TokenSchema)
def refresh():
    """用刷新令牌换一对新令牌；旧刷新令牌随即作废。应答丢失后在宽限期内重试可再换一次（上次换出的令牌作废），
    此外重复使用会吊销整组令牌"""
    return vars(_issued(tokens.refresh_tokens(get_jwt(), request_id=g.request_id)))


@blp.route("/logout", methods=["POST"])
@jwt_required(refresh=True)
@blp.response(200)
def logout():
    """退出登录（携带刷新令牌）：吊销该组刷新令牌，本账号已签发的访问令牌立即失效"""
    tokens.revoke_family(get_jwt(), request_id=g.request_id)
    replicas.wrote_as(str(get_jwt().get("sub", "")))  # its token version moved on: new sign-ins need it
