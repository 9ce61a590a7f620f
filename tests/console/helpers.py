"""Driving the console with the Flask test client as a browser would: a session cookie and CSRF tokens
taken from the pages themselves."""

from __future__ import annotations

import re

from tests.factories import PASSWORD

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client, page: str = "/console/login") -> str:
    html = client.get(page).get_data(as_text=True)
    match = CSRF_META.search(html)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token})


def post(client, url: str, data: dict | None = None, *, htmx: bool = False, **kwargs):
    """A form post carrying the session's CSRF token (as the page's hidden field does)."""
    token = csrf_token(client, "/console/")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={"csrf_token": token, **(data or {})}, headers=headers, **kwargs)


def text(response) -> str:
    return response.get_data(as_text=True)
