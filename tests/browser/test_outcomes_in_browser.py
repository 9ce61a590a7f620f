"""Outcomes in a real browser: a leaderboard with its ECharts chart drawn, a member's points-per-month line,
HR's XLSX download read back (rows equal to the API's JSON), and publishing a 业务之星 run."""

from __future__ import annotations

import requests
from playwright.sync_api import expect
from python_calamine import CalamineWorkbook

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.stars import runs as stars
from points_service.models import Member, Role, User
from tests.browser.live import bearer, sign_in
from tests.factories import PASSWORD
from tests.factories.annual import YEAR, reported, score, settled
from tests.factories.boards import entry


def _world(app) -> dict:
    """The seeded city's objects by name, inside ``app``'s context (the factories' world is not kept)."""
    members = {m.name: m for m in db.session.scalars(db.select(Member))}
    users = {u.username: u for u in db.session.scalars(db.select(User)) if u.username}
    return {"alice": members["张晓丽"], "bob": members["李·建国"], "carol": members["王𠮷"], "users": users}


def test_a_leaderboard_draws_its_bar_chart_and_a_member_her_monthly_line(page, live):
    with live.app.app_context():
        world = _world(live.app)
        for name, points in (("alice", 9), ("bob", 7), ("carol", 4)):
            entry(world[name], points, utcnow())
        db.session.commit()
    sign_in(page, live.url, "admin", PASSWORD)
    page.goto(f"{live.url}/console/boards")
    expect(page.locator("#board-chart canvas")).to_have_count(1)
    expect(page.locator("#board tbody tr")).to_have_count(3)
    page.locator("#board a", has_text="张晓丽").click()
    expect(page.locator("#points-chart canvas")).to_have_count(1)


def test_hr_downloads_the_xlsx_and_it_reads_back_as_the_apis_rows(page, live, tmp_path):
    with live.app.app_context():
        world = _world(live.app)
        for name, points in (("alice", 92), ("bob", 80), ("carol", 70)):
            score(world, world[name], points)
        reported(world["alice"], world["bob"], world["carol"])
        settled(world)
        hr_id = world["users"]["finance_hr"].id
    sign_in(page, live.url, "finance_hr", PASSWORD)
    page.goto(f"{live.url}/console/hr?year={YEAR}")
    expect(page.locator("#grade-chart canvas")).to_have_count(1)
    with page.expect_download() as download:
        page.click("#download-xlsx")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    api = requests.get(f"{live.url}/api/v1/annual/{YEAR}/scores?page_size=100", headers=bearer(live.app, hr_id),
                       timeout=10).json()["data"]["items"]
    header = {name: index for index, name in enumerate(sheet[0])}
    assert [(r[header["编号"]], r[header["姓名/名称"]], float(r[header["年度积分"]]), r[header["评定等次"]])
            for r in sheet[1:]] == [(str(i["subject"]["id"]), i["subject"]["name"], float(i["total"]), i["grade"])
                                    for i in api]
    assert len(api) == 2  # finance's HR: alice and bob, not education's carol


def test_an_admin_publishes_a_proposed_star_run(page, live):
    with live.app.app_context():
        admin = db.session.scalar(db.select(User).where(User.username == "admin"))
        assert admin.grants[0].role == Role.ADMIN
        run_id = stars.propose_star_run(principal_for(admin), "2026-Q3").id
    sign_in(page, live.url, "admin", PASSWORD)
    page.goto(f"{live.url}/console/selections/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_text("待发布")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-action="publish"]')
    expect(page.locator("#run-status")).to_have_text("公示中")
    expect(page.locator("#objection-form")).to_be_visible()
