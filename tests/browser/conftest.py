"""Browser tests (marker ``browser``): Playwright's sync API driving the system Chromium against a live
server. Without /usr/bin/chromium they fail loudly in CI (CI=true) and skip, saying why, elsewhere."""

from __future__ import annotations

import os

import pytest

from tests.browser.live import LiveServer, build_app, chromium_path, launch, seed

MISSING = "no system Chromium: apt-get install -y chromium fonts-noto-cjk"


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the system Chromium against a live server")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {MISSING}", pytrace=False)
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def live(tmp_path):
    """A fresh app, database and server per test; ``live.data`` holds the seeded ids."""
    app = build_app(tmp_path / "browser.db")
    data = seed(app)
    with LiveServer(app) as server:
        server.app, server.data = app, data
        yield server


@pytest.fixture
def page(browser, live):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
