"""Authentication for API views: bearer JWTs via flask-jwt-extended, with its errors in our envelope.

``current_principal()`` is the only bridge from the request to the domain's explicit actor.
"""

from __future__ import annotations

import re
from functools import wraps

import jwt as pyjwt
from flask import g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_jwt_extended.config import config as jwt_config

from points_service.api.errors import handle_service_error
from points_service.domain.access import Principal, could_be_allowed, load_acting_member, load_principal
from points_service.domain.errors import Forbidden, Unauthorized

jwt = JWTManager()


class TokenInvalid(Unauthorized):
    code, message = "token_invalid", "登录凭证无效，请重新登录"


class TokenExpired(Unauthorized):
    code, message = "token_expired", "登录已过期，请刷新或重新登录"


def init_app(app) -> None:
    jwt.init_app(app)

    # flask-jwt-extended answers its own errors; these loaders make the answer our envelope.
    jwt.invalid_token_loader(lambda _reason: handle_service_error(TokenInvalid()))
    jwt.expired_token_loader(lambda _header, _payload: handle_service_error(TokenExpired()))
    jwt.unauthorized_loader(lambda _reason: handle_service_error(Unauthorized()))
    jwt.needs_fresh_token_loader(lambda _header, _payload: handle_service_error(TokenInvalid()))
    jwt.revoked_token_loader(lambda _header, _payload: handle_service_error(TokenInvalid()))
    jwt.user_lookup_error_loader(lambda _header, _payload: handle_service_error(TokenInvalid()))
    # PyJWT checks exp and iat only when present: a token without them would never expire.
    jwt.token_verification_loader(lambda _header, payload: payload.keys() >= REQUIRED_CLAIMS)
    jwt.token_verification_failed_loader(lambda _header, _payload: handle_service_error(TokenInvalid()))


REQUIRED_CLAIMS = {"exp", "iat", "sub"}
SUBJECT_KINDS = {"u", "w"}  # u:<user id> (an account), w:<wechat identity id> (not yet bound)


def token_subject() -> tuple[str, int]:
    """The verified token's subject as (kind, id); anything else our key signed is still refused."""
    kind, _, raw_id = str(get_jwt()["sub"]).partition(":")
    if kind not in SUBJECT_KINDS or not (raw_id.isascii() and raw_id.isdigit()):
        raise TokenInvalid()
    return kind, int(raw_id)


def _load_principal(load) -> Principal:
    kind, subject_id = g.token_subject = token_subject()
    if kind != "u":
        raise Forbidden("请先绑定党员身份", code="binding_required")
    principal = load(subject_id, request_id=g.get("request_id"))
    if principal is None:  # the account is gone or disabled: its tokens die with it
        raise TokenInvalid()
    if get_jwt().get("ver", 0) != principal.token_version:  # issued before a logout or a revoked family
        raise TokenInvalid()
    return principal


_PLAIN_BEARER = re.compile(r"Bearer ([^\s,]+)")


def verify_access_token() -> None:
    """``verify_jwt_in_request()`` with one decode of the token: flask-jwt-extended decodes it without and then
    with its signature and parses its header twice more. A plain ``Authorization: Bearer <token>`` is verified
    here with the library's settings and checks (signature, exp, iat, the access type, ``REQUIRED_CLAIMS``) and
    its claims stored where ``get_jwt()`` finds them; anything else (no header, several schemes) takes the
    library's own path, which answers it."""
    plain = _PLAIN_BEARER.fullmatch(request.headers.get(jwt_config.header_name, "").strip())
    if plain is None or jwt_config.header_type != "Bearer" or jwt_config.token_location != ["headers"]:
        verify_jwt_in_request()
        return
    try:
        decoded = pyjwt.decode_complete(
            plain.group(1), jwt_config.decode_key, algorithms=jwt_config.decode_algorithms,
            audience=jwt_config.decode_audience, issuer=jwt_config.decode_issuer, leeway=jwt_config.leeway,
            options={"verify_aud": jwt_config.decode_audience is not None, "verify_sub": jwt_config.verify_sub})
    except pyjwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except pyjwt.InvalidTokenError:
        raise TokenInvalid() from None
    claims = decoded["payload"]
    for claim, default in (("type", "access"), ("fresh", False), ("jti", None)):  # as the library does
        claims.setdefault(claim, default)
    if claims["type"] != "access" or not claims.keys() >= REQUIRED_CLAIMS | {jwt_config.identity_claim_key}:
        raise TokenInvalid()
    # What verify_jwt_in_request() leaves for get_jwt() and friends (no user lookup loader is registered).
    g._jwt_extended_jwt_user, g._jwt_extended_jwt_header = None, decoded["header"]
    g._jwt_extended_jwt, g._jwt_extended_jwt_location = claims, "headers"


def login_required(view):
    """Require an access token of a bound account; puts the principal on ``g.principal``."""
    return _with_principal(view, load_principal)


def acting_member_required(view):
    """``login_required`` for a view that acts only as the signed-in member himself and asks no role (a
    check-in, a check-out, a self-report, a 积分超市 order): his principal without grants or places, one
    lookup by primary keys instead of the full principal's eleven joins. It refuses the same tokens (revoked, a
    disabled account, a deactivated member); a role-gated action under it would be refused, never allowed."""
    return _with_principal(view, load_acting_member)


def _with_principal(view, load):
    @wraps(view)
    def wrapper(*args, **kwargs):
        verify_access_token()
        g.principal = _load_principal(load)
        return view(*args, **kwargs)

    return wrapper


def authorize_first(action: str):
    """Decorator under ``login_required``: refuse (403) a principal who lacks every role ``action`` needs,
    before the body is parsed or any id is looked up. The use case still decides on the object."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not could_be_allowed(g.principal, action):
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper

    return decorator


def wechat_token_required(view):
    """Require any access token, including an unbound WeChat identity's (for /auth/bind)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        verify_access_token()
        g.token_subject = token_subject()
        return view(*args, **kwargs)

    return wrapper


def current_principal() -> Principal:
    return g.principal
