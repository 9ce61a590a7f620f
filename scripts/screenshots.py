"""Write the console's screenshots to docs/screenshots/*.png (what docs/console.md shows).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs the app on a throw-away SQLite file with the browser tests' seed data, serves it on 127.0.0.1 and
drives the system Chromium (``apt-get install -y chromium fonts-noto-cjk``), so CJK text renders with
Noto Sans CJK. Takes about 15 seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live import LiveServer, build_app, launch, seed, sign_in  # noqa: E402
from tests.browser.outcomes_seed import seed_outcomes  # noqa: E402
from tests.factories import PASSWORD  # noqa: E402
from tests.roster_files import csv_bytes  # noqa: E402

LAPTOP = {"width": 1366, "height": 860}
TABLET = {"width": 820, "height": 1180}


def shoot(page, path: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def as_user(browser, server, username: str, viewport=LAPTOP):
    page = browser.new_context(locale="zh-CN", viewport=viewport, device_scale_factor=1).new_page()
    sign_in(page, server.url, username, PASSWORD)
    return page


def pages_of_the_secretary(browser, server, out: Path) -> None:
    page = as_user(browser, server, "secretary")
    shoot(page, out / "home-secretary.png")
    page.goto(f"{server.url}/console/approvals")
    shoot(page, out / "approvals.png")
    page.locator('[data-action="approve"]').first.click()
    page.wait_for_selector("td .status-approved")
    page.goto(f"{server.url}/console/approvals/record:{server.data['records'][1]}")
    shoot(page, out / "approval-detail.png")
    page.goto(f"{server.url}/console/members/{server.data['alice']}")
    shoot(page, out / "member-points.png")
    tablet = as_user(browser, server, "secretary", TABLET)
    tablet.goto(f"{server.url}/console/approvals")
    shoot(tablet, out / "approvals-tablet.png")


def pages_of_the_community(browser, server, out: Path) -> None:
    page = as_user(browser, server, "north_admin")
    page.goto(f"{server.url}/console/reports")
    shoot(page, out / "reports.png")
    page.goto(f"{server.url}/console/activities")
    shoot(page, out / "activities.png")
    page.goto(f"{server.url}/console/activities/{server.data['activity']}/checkin")
    page.wait_for_selector("#checkin-qr svg")
    shoot(page, out / "checkin-qr.png")


def pages_of_the_admin(browser, server, out: Path) -> None:
    page = browser.new_context(locale="zh-CN", viewport=LAPTOP).new_page()
    page.goto(f"{server.url}/console/login")
    shoot(page, out / "login.png")
    sign_in(page, server.url, "admin", PASSWORD)
    shoot(page, out / "home-admin.png")
    page.goto(f"{server.url}/console/admin/roster")
    bad = csv_bytes("members", ["赵一", "13800000001", "财政局第一党支部", "北门社区", ""],
                    ["钱二", "12345", "不存在的支部", "北门社区", ""], ["孙三", "13800000003", "", "南门社区", ""])
    page.set_input_files("input[name=file]", {"name": "members.csv", "mimeType": "text/csv", "buffer": bad})
    page.click("text=校验文件")
    shoot(page, out / "roster-dry-run.png")
    page.goto(f"{server.url}/console/admin/policy")
    page.fill("textarea[name=text]", "name: 测试政策\nitems:\n  member.activity_hour:\n    points: 很多\n")
    page.click("button[value=publish]")
    shoot(page, out / "policy-errors.png")
    page.goto(f"{server.url}/console/admin/users")
    shoot(page, out / "users.png")


def pages_of_the_outcomes(browser, server, out: Path) -> None:
    page = as_user(browser, server, "admin")
    page.goto(f"{server.url}/console/boards")
    page.wait_for_selector("#board-chart canvas")
    shoot(page, out / "leaderboard.png")
    page.goto(f"{server.url}/console/boards?subject=organization&measure=per_capita")
    page.wait_for_selector("#board-chart canvas")
    shoot(page, out / "leaderboard-organizations.png")
    page.goto(f"{server.url}/console/members/{server.data['alice']}")
    page.wait_for_selector("#points-chart canvas")
    shoot(page, out / "member-trend.png")
    page.goto(f"{server.url}/console/selections/runs/{server.data['star_run']}")
    shoot(page, out / "star-run-review.png")
    hr = as_user(browser, server, "finance_hr")
    hr.goto(f"{server.url}/console/hr?year={server.data['year']}")
    hr.wait_for_selector("#grade-chart canvas")
    shoot(hr, out / "hr-statements.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = build_app(Path(folder) / "screens.db")
        data = seed(app)
        data.update(seed_outcomes(app))
        with LiveServer(app) as server, sync_playwright() as playwright:
            server.data = data
            browser = launch(playwright)
            pages_of_the_secretary(browser, server, out)
            pages_of_the_community(browser, server, out)
            pages_of_the_admin(browser, server, out)
            pages_of_the_outcomes(browser, server, out)
            browser.close()


if __name__ == "__main__":
    main()
