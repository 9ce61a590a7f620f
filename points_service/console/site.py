"""The console's parent blueprint: the session, sign-in and sign-out, CSRF, the navigation context and the
error pages. Children (views/*) only add pages; they inherit all of this."""

from __future__ import annotations

import logging
import unicodedata
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from points_service import ratelimit
from points_service.console import nav
from points_service.console.forms import ROLE_NAMES, LoginForm
from points_service.console.pages import is_htmx, register_filters
from points_service.db import db
from points_service.domain.access import Principal, principal_for
from points_service.domain.accounts import signin as auth
from points_service.domain.errors import ServiceError, Unauthorized
from points_service.models import User

log = logging.getLogger(__name__)
csrf = CSRFProtect()
console = Blueprint("console", __name__, url_prefix="/console", template_folder="../templates",
                    static_folder="../static/console", static_url_path="/assets")

SESSION_USER = "console_user_id"
# The account's token version at sign-in: a sign-out anywhere moves it on, and a cookie naming an older one
# (a copy kept from before the sign-out) is refused, whatever its signature and age.
SESSION_VERSION = "console_token_version"
PUBLIC_ENDPOINTS = {"console.login", "console.static"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
register_filters(console)


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed session cookie, its signer built only for a request that carries the cookie: Flask builds
    it first for every request (with a JSON dump to probe the serializer), and the API's requests, which carry
    bearer tokens, never have one. A request without the cookie gets the empty session Flask would give it."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


@console.before_request
def load_signed_in_user():
    """Every unsafe request carries a CSRF token; every page but the sign-in page needs a signed-in user."""
    if request.method not in SAFE_METHODS:
        csrf.protect()
    g.principal = _session_principal()
    if g.principal is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return _to_login()
    return None


def _session_principal() -> Principal | None:
    user_id = session.get(SESSION_USER)
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not _session_still_valid(user):
        # Signed out elsewhere, a disabled account or a deactivated member: the session ends now.
        session.pop(SESSION_USER, None)
        session.pop(SESSION_VERSION, None)
        return None
    g.console_user = user
    return principal_for(user, request_id=g.get("request_id"))


def _session_still_valid(user: User) -> bool:
    deactivated = user.member is not None and not user.member.is_active
    version = session.get(SESSION_VERSION)
    return user.is_active and not deactivated and isinstance(version, int) and version == user.token_version


def _to_login():
    if is_htmx():  # a partial request cannot show a page: tell htmx to load the sign-in page instead
        return "", 204, {"HX-Redirect": url_for("console.login")}
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))


def current_principal() -> Principal:
    return g.principal


@console.context_processor
def navigation():
    principal = g.get("principal")
    if principal is None:
        return {}
    items = nav.visible_items(principal)
    return {"nav_items": items, "badges": nav.badge_counts(principal, items), "current_user": g.console_user,
            "role_names": ROLE_NAMES}


@console.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            ratelimit.hit("RATELIMIT_LOGIN_PER_IP", ratelimit.client_address())
            user = auth.console_sign_in(form.username.data, form.password.data,
                                        policy=auth.login_policy(current_app.config),
                                        client=ratelimit.client_address(), request_id=g.get("request_id"))
        except ServiceError as error:
            form.form_errors.append(error.message)
            return render_template("console/login.html", form=form), error.status
        _fresh_session()
        session.permanent = True
        session[SESSION_USER] = user.id
        session[SESSION_VERSION] = user.token_version
        return redirect(_safe_next(form.next.data))
    form.next.data = form.next.data or request.args.get("next", "")
    return render_template("console/login.html", form=form)


def _safe_next(target: str | None) -> str:
    return _console_path(target) or url_for("console.home.index")


def back_to(default: str) -> str:
    """Where a form asks to return to (its ``back`` field), if that is a console page; else ``default``."""
    return _console_path(request.form.get("back")) or default


def _console_path(target: str | None) -> str | None:
    """``target`` if it is a path inside the console, else None: never an open redirect to another site. A
    control character is refused too (a CR or LF makes the Location header fail after the form's work is
    committed: a 500 for a done action), and so is a backslash (browsers read it as a slash)."""
    if not target or not target.startswith("/console/") or _has_unsafe_characters(target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _has_unsafe_characters(target: str) -> bool:
    return "\\" in target or any(unicodedata.category(char) == "Cc" for char in target)


def _fresh_session() -> None:
    """A new session and CSRF secret at each sign-in and sign-out (the cached token belonged to the old one)."""
    session.clear()
    g.pop("csrf_token", None)


@console.route("/logout", methods=["POST"])
def logout():
    auth.console_sign_out(g.principal)
    _fresh_session()
    return redirect(url_for("console.login"))


# ------------------------------------------------------------------------------------------------- errors

ERROR_TITLES = {400: "请求有误", 403: "无权访问", 404: "页面不存在", 409: "状态已变化", 413: "文件过大",
                422: "提交的数据有误", 429: "操作过于频繁", 500: "服务器内部错误"}


def error_page(status: int, message: str, headers: dict | None = None):
    title = ERROR_TITLES.get(status, "出错了")
    template = "console/_error_fragment.html" if is_htmx() else "console/error.html"
    # htmx does not swap error responses: a partial error is sent as 200 with the message in place.
    return render_template(template, status=status, title=title, message=message), \
        200 if is_htmx() else status, headers or {}


@console.errorhandler(ServiceError)
def service_error(error: ServiceError):
    if isinstance(error, Unauthorized) and g.get("principal") is None:
        return _to_login()
    return error_page(error.status, error.message, error.headers)


@console.errorhandler(CSRFError)
def csrf_error(_error: CSRFError):
    return error_page(400, "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


@console.errorhandler(HTTPException)
def http_error(error: HTTPException):
    status = error.code or 500
    return error_page(status, ERROR_TITLES.get(status, error.name))


@console.errorhandler(Exception)
def unexpected_error(_error: Exception):
    log.exception("unhandled console error")
    db.session.rollback()
    return error_page(500, "服务器内部错误，请稍后再试")
