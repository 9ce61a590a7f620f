"""Member status in a real browser: an admin schedules a deactivation from the member's page (the confirm
dialog, the date picker's value), sees it waiting, and cancels it."""

from __future__ import annotations

from playwright.sync_api import expect

from points_service.db import db
from points_service.models import Member
from tests.browser.live import sign_in
from tests.factories import PASSWORD


def test_an_admin_schedules_a_deactivation_and_cancels_it(page, live):
    with live.app.app_context():
        alice_id = db.session.scalar(db.select(Member.id).where(Member.name == "张晓丽"))
    sign_in(page, live.url, "admin", PASSWORD)
    page.goto(f"{live.url}/console/members/{alice_id}")
    form = page.locator("#deactivate-form")
    form.locator("select[name=reason_code]").select_option("retired")
    form.locator("input[name=reason]").fill("到龄退休")
    form.locator("input[name=effective_on]").fill("2099-01-01")
    page.once("dialog", lambda dialog: dialog.accept())
    form.locator("button[type=submit]").click()
    waiting = page.locator("#scheduled-changes tbody tr")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("待生效")
    expect(page.locator("#member-status h2")).to_contain_text("在册")
    page.once("dialog", lambda dialog: dialog.accept())
    waiting.locator("button[type=submit]").click()
    expect(page.locator("#scheduled-changes tbody tr")).to_contain_text("已取消")
