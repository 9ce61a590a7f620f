"""Reports to confirm or reject (with an organization's three lists) and activities: publishing, editing
with field errors and cancelling, and the organizer's check-in screen whose code the API accepts."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from points_service.console.pages import LOCAL
from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.checkin import tokens as checkin_tokens
from points_service.domain.checkin.scans import step_seconds
from points_service.domain.reports import reporting as reports
from points_service.models import Activity, ActivityStatus, InboxMessage, Report, ReportStatus
from tests.console.helpers import post, sign_in, text
from tests.factories import auth_header, make_user
from tests.factories.activities import make_activity, scan_body


def org_report(world) -> Report:
    return reports.submit_org_report(principal_for(world["users"]["org_admin"]), world["finance"].id,
                                     world["north"].id, resources=["会议室两间"], needs=["老旧小区加装电梯"],
                                     projects=["共建四点半课堂"])


def test_the_community_admin_sees_an_organization_report_with_its_three_lists_and_confirms_it(client, world):
    report = org_report(world)
    sign_in(client, "north_admin")
    page = text(client.get("/console/reports"))
    assert "会议室两间" in page and "老旧小区加装电梯" in page and "共建四点半课堂" in page
    assert 'id="badge-reports" data-count="1"' in page
    post(client, f"/console/reports/{report.id}/confirm", {"grid_id": ""})
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == ReportStatus.CONFIRMED


def test_rejecting_a_report_keeps_the_reason_and_a_missing_reason_changes_nothing(client, world):
    report = reports.submit_member_report(principal_for(world["users"]["alice"]), world["north"].id)
    sign_in(client, "north_admin")
    post(client, f"/console/reports/{report.id}/reject", {"reason": ""})
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == ReportStatus.PENDING
    post(client, f"/console/reports/{report.id}/reject", {"reason": "不在本社区居住"})
    db.session.expire_all()
    assert db.session.get(Report, report.id).reason == "不在本社区居住"


def test_a_back_field_with_a_line_break_returns_to_the_reports_page_after_the_rejection(client, world):
    report = reports.submit_member_report(principal_for(world["users"]["alice"]), world["north"].id)
    sign_in(client, "north_admin")
    response = post(client, f"/console/reports/{report.id}/reject", {"reason": "不在本社区居住",
                                                                     "back": "/console/\r\nX: y"})
    assert (response.status_code, response.headers["Location"]) == (302, "/console/reports")
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == ReportStatus.REJECTED


def test_another_communitys_admin_cannot_see_or_decide_the_report(client, world):
    report = org_report(world)
    sign_in(client, "south_admin")
    assert "会议室两间" not in text(client.get("/console/reports"))
    post(client, f"/console/reports/{report.id}/confirm")
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == ReportStatus.PENDING


def activity_form(world, **overrides) -> dict:
    day = (utcnow() + timedelta(days=2)).astimezone(LOCAL).date()
    values = {"community_id": world["north"].id, "title": "固定服务日：清理楼道", "item_code": "member.activity_hour",
              "starts_at": f"{day}T09:00", "ends_at": f"{day}T11:00",
              "lat": "35.4154", "lng": "116.5872", "radius_m": "100", "capacity": ""}
    return {**values, **overrides}


def test_publishing_an_activity_from_the_form(client, world):
    sign_in(client, "north_admin")
    response = post(client, "/console/activities/new", activity_form(world))
    assert response.status_code == 302
    activity = db.session.query(Activity).one()
    day = (utcnow() + timedelta(days=2)).astimezone(LOCAL).date()
    assert activity.title == "固定服务日：清理楼道"
    assert activity.starts_at == datetime.combine(day, time(9), LOCAL)  # the form's time is Shanghai time


def test_the_use_cases_field_errors_show_under_the_fields(client, world):
    sign_in(client, "north_admin")
    response = post(client, "/console/activities/new", activity_form(world, item_code="member.self_service_hour"))
    html = text(response)
    assert response.status_code == 200
    assert 'data-field="item_code"' in html and "需要人工审核" in html
    assert db.session.query(Activity).count() == 0


def test_a_place_that_is_no_finite_number_is_refused_in_chinese_and_nothing_is_written(client, world):
    sign_in(client, "north_admin")
    for field, value in (("lat", "nan"), ("lng", "inf"), ("lat", "-Infinity"), ("lng", "1e400")):
        response = post(client, "/console/activities/new", activity_form(world, **{field: value}))
        assert "请输入有效的数字" in text(response) and "Number must be" not in text(response), (field, value)
    assert "应在 3.8–53.6 之间" in text(post(client, "/console/activities/new", activity_form(world, lat="60")))
    assert db.session.query(Activity).count() == 0


def test_editing_an_activity_before_it_starts(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2))
    db.session.commit()
    sign_in(client, "north_admin")
    assert "固定服务日：清理楼道" in text(client.get(f"/console/activities/{activity.id}/edit"))
    post(client, f"/console/activities/{activity.id}/edit", activity_form(world, title="改期后的服务日"))
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).title == "改期后的服务日"


def test_an_edit_below_the_members_signed_up_is_refused_with_how_many(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2), capacity=5)
    db.session.commit()
    for name in ("alice", "bob"):
        signed = client.post(f"/api/v1/activities/{activity.id}/signups", headers=auth_header(world["users"][name]))
        assert signed.status_code == 201
    sign_in(client, "north_admin")
    page = text(post(client, f"/console/activities/{activity.id}/edit", activity_form(world, capacity="1")))
    assert "已有 2 人报名，人数上限不能少于 2" in page
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).capacity == 5
    post(client, f"/console/activities/{activity.id}/edit", activity_form(world, capacity="2"))
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).capacity == 2
    carol = make_user(member=world["carol"])
    db.session.commit()
    full = client.post(f"/api/v1/activities/{activity.id}/signups", headers=auth_header(carol))
    assert (full.status_code, full.get_json()["code"]) == (409, "activity_full")


def test_the_check_in_screen_shows_a_code_the_api_accepts_and_counts_the_check_in(client, world):
    activity = make_activity(world["north"], utcnow() - timedelta(minutes=5))
    db.session.commit()
    sign_in(client, "north_admin")
    assert client.get(f"/console/activities/{activity.id}/checkin").status_code == 200
    live = text(client.get(f"/console/activities/{activity.id}/checkin/live"))
    token = live.split('data-token="')[1].split('"')[0]
    assert "<svg" in live and 'data-count="0"' in live
    assert checkin_tokens.token_is_valid(token, activity.id, activity.checkin_secret, utcnow(), step_seconds())
    response = client.post(f"/api/v1/activities/{activity.id}/checkins", json=scan_body(token),
                           headers=auth_header(world["users"]["alice"]))
    assert response.status_code == 201, response.get_json()
    assert 'data-count="1"' in text(client.get(f"/console/activities/{activity.id}/checkin/live"))


def test_another_communitys_admin_gets_a_403_for_the_check_in_screen(client, world):
    activity = make_activity(world["north"], utcnow())
    db.session.commit()
    sign_in(client, "south_admin")
    assert client.get(f"/console/activities/{activity.id}/checkin").status_code == 403
    assert client.get(f"/console/activities/{activity.id}/checkin/live").status_code == 403


def test_a_published_proposal_is_edited_by_the_host_community_not_by_the_proposing_branch(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2), proposed_by=world["fin1"])
    db.session.commit()
    sign_in(client, "secretary")
    assert f"/console/activities/{activity.id}/edit" not in text(client.get("/console/activities"))
    assert client.get(f"/console/activities/{activity.id}/edit").status_code == 403
    refused = post(client, f"/console/activities/{activity.id}/edit", activity_form(world, title="改掉"))
    assert refused.status_code == 403
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).title == "固定服务日：清理楼道"
    sign_in(client, "north_admin")
    assert f"/console/activities/{activity.id}/edit" in text(client.get("/console/activities"))
    post(client, f"/console/activities/{activity.id}/edit", activity_form(world, title="社区调整"))
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).title == "社区调整"


def test_cancelling_an_activity_from_the_list_with_a_reason(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2))
    db.session.commit()
    client.post(f"/api/v1/activities/{activity.id}/signups", headers=auth_header(world["users"]["alice"]))
    url = f"/console/activities/{activity.id}/cancel"
    sign_in(client, "north_admin")
    html = text(client.get("/console/activities"))
    assert f'action="{url}"' in html and "取消活动" in html
    no_token = client.post(url, data={"reason": "场地临时征用"})
    assert no_token.status_code == 400  # CSRF, as every console form
    blank = post(client, url, {"reason": "  "}, follow_redirects=True)
    assert "请填写取消原因" in text(blank)
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status == ActivityStatus.PUBLISHED
    done = post(client, url, {"reason": "场地临时征用"}, follow_redirects=True)
    assert "已取消" in text(done) and f'action="{url}"' not in text(done)
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status == ActivityStatus.CANCELLED
    assert db.session.query(InboxMessage).filter_by(event="activity_cancelled").count() == 1
    again = post(client, url, {"reason": "再取消一次"}, follow_redirects=True)
    assert "只有已发布的活动可以取消" in text(again)
    assert '<span class="status status-cancelled">已取消</span>' in text(again)


def test_the_cancel_button_is_the_host_communitys_and_the_proposing_branch_is_refused(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2), proposed_by=world["fin1"])
    db.session.commit()
    url = f"/console/activities/{activity.id}/cancel"
    sign_in(client, "secretary")
    assert f'action="{url}"' not in text(client.get("/console/activities"))
    assert post(client, url, {"reason": "越权"}).status_code == 403
    post(client, "/console/logout")
    sign_in(client, "south_admin")
    assert post(client, url, {"reason": "越权"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status == ActivityStatus.PUBLISHED


def test_the_reports_badge_counts_what_the_user_may_decide_not_all_he_sees(client, world):
    reports.submit_member_report(principal_for(world["users"]["alice"]), world["north"].id)
    sign_in(client, "north_admin")  # decides reports to his community
    assert 'id="badge-reports" data-count="1"' in text(client.get("/console/"))
    sign_in(client, "secretary")  # sees his member's report, decides none
    page = text(client.get("/console/"))
    assert 'id="badge-reports" data-count="0"' in page
    assert "张晓丽" in text(client.get("/console/reports"))  # still listed for him


def test_each_role_follows_its_upcoming_activities_links_to_a_page_it_may_open_the_code_for_managers(client, world):
    published = make_activity(world["north"], utcnow() + timedelta(days=1))
    proposed = make_activity(world["north"], utcnow() + timedelta(days=2), status=ActivityStatus.PROPOSED,
                             proposed_by=world["fin1"])
    db.session.commit()
    qr = f"/console/activities/{published.id}/checkin"
    for username, count, sees_qr in [("north_admin", 2, True), ("admin", 2, True), ("secretary", 2, False),
                                     ("south_admin", 1, False), ("finance_org_admin", 2, False),
                                     ("fin2_secretary", 1, False)]:
        sign_in(client, username)
        card = text(client.get("/console/")).split("<h2>近期活动</h2>")[1].split("</section>")[0]
        links = re.findall(r'<p><a href="([^"]+)">固定服务日', card)
        assert len(links) == count, (username, card)
        assert (qr in links) == sees_qr, (username, links)
        assert f"/console/activities/{proposed.id}/checkin" not in links  # not published: no code to show
        for link in links:
            assert client.get(link).status_code == 200, (username, link)
        assert (f'href="{qr}"' in text(client.get("/console/activities"))) == sees_qr, username  # its 签到码 button


def test_moving_an_activity_in_the_console_tells_its_members_in_their_inbox(client, world):
    activity = make_activity(world["north"], utcnow() + timedelta(days=2))
    db.session.commit()
    signed = client.post(f"/api/v1/activities/{activity.id}/signups", headers=auth_header(world["users"]["alice"]))
    assert signed.status_code == 201
    sign_in(client, "north_admin")
    day = (utcnow() + timedelta(days=3)).astimezone(LOCAL).date()
    post(client, f"/console/activities/{activity.id}/edit",
         activity_form(world, starts_at=f"{day}T14:00", ends_at=f"{day}T16:00"))

    inbox = client.get("/api/v1/me/messages", headers=auth_header(world["users"]["alice"])).get_json()["data"]
    (message,) = inbox["items"]
    assert (message["event"], message["link"]) == ("activity_moved", "/pages/activities/activities")
    assert f"{day} 14:00 至 {day} 16:00" in message["body"]
