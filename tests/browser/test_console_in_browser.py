"""The console in a real browser: sign in, approve (the member's points change), reject with a reason,
the organizer's QR screen counting a check-in made through the API, and a bad policy's field error."""

from __future__ import annotations

from datetime import datetime, timedelta

import requests
import yaml
from playwright.sync_api import expect

from config.settings import DEFAULT_POLICY_FILE
from tests.browser.live import bearer, sign_in
from tests.factories import PASSWORD
from tests.factories.activities import scan_body


def test_signing_in_shows_the_home_page_and_a_wrong_password_an_error(page, live):
    page.goto(f"{live.url}/console/approvals")
    expect(page).to_have_url(f"{live.url}/console/login?next=/console/approvals")
    page.fill("input[name=username]", "secretary")
    page.fill("input[name=password]", "not-the-password-1")
    page.click("button[type=submit]")
    expect(page.locator(".form-error")).to_contain_text("用户名或密码错误")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live.url}/console/approvals")
    expect(page.locator("#badge-approvals")).to_have_text("3")


def test_approving_a_pending_record_changes_the_members_points(page, live):
    alice = live.data["alice"]
    sign_in(page, live.url, "secretary", PASSWORD)
    page.goto(f"{live.url}/console/members/{alice}")
    expect(page.locator("#assessment-net")).to_have_text("0")
    page.goto(f"{live.url}/console/approvals")
    row = page.locator(f'tr[data-approval-id="record:{live.data["records"][0]}"]')
    row.locator('[data-action="approve"]').click()
    expect(row.locator(".status")).to_have_text("已通过")  # swapped in place by htmx
    expect(page.locator("#badge-approvals")).to_have_text("2")
    page.goto(f"{live.url}/console/members/{alice}")
    expect(page.locator("#assessment-net")).not_to_have_text("0")
    expect(page.locator("#ledger")).to_contain_text("考核积分")  # the approval's award, in the ledger


def test_rejecting_with_a_reason(page, live):
    sign_in(page, live.url, "secretary", PASSWORD)
    page.goto(f"{live.url}/console/approvals")
    row = page.locator(f'tr[data-approval-id="record:{live.data["records"][1]}"]')
    row.locator("input[name=reason]").fill("照片与活动时间不符")
    row.locator('[data-action="reject"]').click()
    expect(row.locator(".status")).to_have_text("已驳回")
    expect(row).to_contain_text("照片与活动时间不符")


def test_the_organizers_qr_screen_counts_a_check_in_made_with_its_token_through_the_api(page, live):
    activity = live.data["activity"]
    sign_in(page, live.url, "north_admin", PASSWORD)
    page.goto(f"{live.url}/console/activities/{activity}/checkin")
    qr = page.locator("#checkin-qr")
    expect(qr.locator("svg")).to_be_visible()
    expect(page.locator("#checkin-count")).to_have_text("0")
    token = qr.get_attribute("data-token")
    response = requests.post(f"{live.url}/api/v1/activities/{activity}/checkins", json=scan_body(token),
                             headers=bearer(live.app, live.data["alice_user"]), timeout=10)
    assert response.status_code == 201, response.text
    expect(page.locator("#checkin-count")).to_have_text("1")  # the screen polls every second under test


def test_uploading_a_bad_policy_shows_the_field_error(page, live):
    document = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    document["items"]["member.activity_hour"]["points"] = "很多"
    sign_in(page, live.url, "admin", PASSWORD)
    page.goto(f"{live.url}/console/admin/policy")
    page.fill("textarea[name=text]", yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    page.fill("input[name=effective_from]", (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT09:00"))
    page.click("button[value=publish]")
    errors = page.locator("#policy-errors")
    expect(errors).to_contain_text("items.member.activity_hour.points")
    expect(page.locator("#policy-versions tbody tr")).to_have_count(1)
