"""Every page a notification links to (the inbox message's link and the WeChat subscribe message's page) is a
page of the mini-program, so a tap on a message never lands on 'page not found'; and the template keys the
mini-program asks consent for are configured, so its POST /me/subscriptions is never template_unknown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.settings import DEFAULT_POLICY_FILE
from points_service.domain.notifications.config import load_config

APP_JSON = Path(__file__).resolve().parents[2] / "miniprogram" / "app.json"
SHIPPED = DEFAULT_POLICY_FILE.parent / "notifications.yaml"
CONFIG = load_config(SHIPPED, environ={})
EVENTS = CONFIG.events
NOTIFICATIONS_JS = APP_JSON.parent / "utils" / "notifications.js"
APP = json.loads(APP_JSON.read_text(encoding="utf-8"))


def page_of(link: str) -> str:
    return link.split("?", 1)[0].removeprefix("/")


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_configured_link_is_a_page_of_the_mini_program(event):
    link = EVENTS[event].link
    assert link.startswith("/pages/"), link
    assert page_of(link) in APP["pages"], f"{event}: {link} is not in miniprogram/app.json"


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_a_link_to_a_tab_page_carries_no_query_the_tab_could_not_read(event):
    tabs = {tab["pagePath"] for tab in APP["tabBar"]["list"]}
    link = EVENTS[event].link
    if page_of(link) in tabs:
        assert "?" not in link, f"{event}: wx.switchTab drops the query of {link}"


def test_the_templates_the_mini_program_asks_for_are_configured():
    source = NOTIFICATIONS_JS.read_text(encoding="utf-8")
    asked = set(re.findall(r"'([a-z_]+)'", "".join(re.findall(r"_KEYS = \[([^\]]*)\]", source))))
    assert asked, "REPORT_KEYS / ORDER_KEYS not found in utils/notifications.js"
    assert asked <= set(CONFIG.templates), asked - set(CONFIG.templates)
