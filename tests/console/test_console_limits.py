"""The console shares the API's sign-in lockout and rate limits: a stranger's failures lock only his own address,
sign-ins are limited per address, roster uploads and 积分超市 pictures per user."""

from __future__ import annotations

import io

from tests.console.helpers import post, sign_in, text
from tests.console.test_market_item_forms import item_form, png


def test_console_failures_lock_the_username_for_that_address_only(app, client, world):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert sign_in(client, "admin", "wrong-password-1").status_code == 401
    locked = sign_in(client, "admin")
    assert locked.status_code == 429 and "登录失败次数过多" in text(locked)
    client.environ_base["REMOTE_ADDR"] = "192.0.2.44"  # the owner, at his own address
    assert sign_in(client, "admin").status_code == 302


def test_console_sign_ins_are_limited_per_address(app, client, world):
    app.config["RATELIMIT_LOGIN_PER_IP"] = "2 per minute"
    for name in ("nobody1", "nobody2"):
        assert sign_in(client, name, "wrong-password-1").status_code == 401
    limited = sign_in(client, "nobody3", "wrong-password-1")
    assert limited.status_code == 429 and "请求过于频繁" in text(limited)


def test_roster_uploads_are_limited_per_user(app, client, world):
    app.config["RATELIMIT_UPLOAD_PER_USER"] = "1 per hour"
    sign_in(client, "admin")
    upload = lambda: post(client, "/console/admin/roster", {"kind": "regions", "file": (io.BytesIO(b"x"), "r.csv")},  # noqa: E731
                          content_type="multipart/form-data")
    assert upload().status_code == 200
    assert upload().status_code == 429


def test_market_pictures_uploaded_in_the_console_are_limited_per_user_as_through_the_api(app, client, world):
    app.config["RATELIMIT_UPLOAD_PER_USER"] = "1 per hour"
    sign_in(client, "north_admin")
    add = lambda name: post(client, "/console/market/items/new", {  # noqa: E731
        **item_form(world["north"], name=name), "picture": (io.BytesIO(png()), "bag.png")},
        content_type="multipart/form-data")
    assert add("环保购物袋").status_code == 302
    limited = add("党徽")
    assert limited.status_code == 429 and "请求过于频繁" in text(limited)
    assert post(client, "/console/market/items/new", item_form(world["north"], name="党徽")).status_code == 302
