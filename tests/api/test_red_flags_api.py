"""流动红旗 and the working-day calendar over HTTP: award, list holders, candidates, permissions, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import award
from points_service.models import AuditEntry, CalendarDay, Report, ReportStatus, SubjectType
from tests.factories import auth_header, make_world
from tests.factories.ledger import local, member_fact


@pytest.fixture
def world(app):
    world = make_world()
    for name in ("alice", "bob", "carol"):
        member = world[name]
        db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                              half="2026-H1", status=ReportStatus.CONFIRMED, decided_at=local(2026, 3, 2)))
    db.session.commit()
    award(member_fact(world["bob"], "member.commend_city"), at=local(2026, 8, 3))
    return world


def call(client, world, method: str, url: str, who: str | None = "admin", json=None):
    headers = auth_header(world["users"][who]) if who else {}
    return client.open(f"/api/v1{url}", method=method, json=json, headers=headers)


def test_an_admin_awards_the_quarter_and_everyone_sees_the_holder(client, world):
    created = call(client, world, "POST", "/red-flags/awards", "admin", {"period": "2026-Q3"})
    assert created.status_code == 201
    [flag] = created.get_json()["data"]["items"]
    assert flag["organization"] == {"id": world["fin2"].id, "name": "财政局第二党支部"}
    assert (flag["kind"], flag["kind_name"], flag["score"], flag["report_rate"]) == ("first", "首次", 10, 1)
    assert flag["scope"] == {"key": f"district:{world['district'].id}", "region_id": world["district"].id,
                             "name": "任城区"}

    listed = call(client, world, "GET", "/red-flags?period=2026-Q3", "alice")
    assert listed.status_code == 200 and listed.get_json()["data"]["items"] == [flag]
    again = call(client, world, "POST", "/red-flags/awards", "admin", {"period": "2026-Q3"})
    assert again.get_json()["data"]["items"] == [flag]

    candidates = call(client, world, "GET", f"/red-flags/awards/{flag['id']}/candidates").get_json()["data"]
    assert candidates["total"] == 3 and candidates["items"][0]["reasons"][0]["code"] == "holder"
    assert call(client, world, "GET", f"/red-flags/awards/{flag['id']}/candidates", "alice").status_code == 403


def test_only_admins_award_and_bad_periods_are_422(client, world):
    assert call(client, world, "POST", "/red-flags/awards", "community_admin", {"period": "2026-Q3"}).status_code == 403
    for body in ({"period": "2026"}, {"period": "Q3"}, {}, {"period": "2026-Q3", "scope": "city"}):
        response = call(client, world, "POST", "/red-flags/awards", "admin", body)
        assert response.status_code == 422
    assert call(client, world, "GET", "/red-flags?period=2026-H2", "alice").status_code == 422
    month = call(client, world, "POST", "/red-flags/awards", "admin", {"period": "2026-09"})
    assert month.status_code == 422 and "period" in month.get_json()["data"]["errors"]


def test_an_admin_marks_a_holiday_and_a_tiaoxiu_day_and_can_undo_it(client, world):
    holiday = call(client, world, "PUT", "/calendar/days/2026-10-08", "admin", {"working": False, "name": "国庆节"})
    assert holiday.status_code == 200 and holiday.get_json()["data"] == {"day": "2026-10-08", "working": False,
                                                                         "name": "国庆节"}
    call(client, world, "PUT", "/calendar/days/2026-10-10", "admin", {"working": True, "name": "调休上班"})
    listed = call(client, world, "GET", "/calendar/days?year=2026").get_json()["data"]["items"]
    assert [(d["day"], d["working"]) for d in listed] == [("2026-10-08", False), ("2026-10-10", True)]
    call(client, world, "PUT", "/calendar/days/2026-10-08", "admin", {"working": True})
    assert db.session.scalars(sa.select(CalendarDay.day)).all() == [local(2026, 10, 10).date()]
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "calendar.set")) == 3


@pytest.mark.parametrize(("url", "body"), [
    ("/calendar/days/2026-02-30", {"working": False}),
    ("/calendar/days/20261008", {"working": False}),
    ("/calendar/days/2026-10-08", {"working": "no"}),
    ("/calendar/days/2026-10-08", {}),
])
def test_bad_calendar_input_is_422(client, world, url, body):
    assert call(client, world, "PUT", url, "admin", body).status_code == 422


def test_only_admins_maintain_the_calendar(client, world):
    assert call(client, world, "PUT", "/calendar/days/2026-10-08", "community_admin",
                {"working": False}).status_code == 403
    assert call(client, world, "GET", "/calendar/days?year=2026", "alice").status_code == 403


def test_an_admin_withdraws_a_flag_which_stays_listed_as_withdrawn(client, world):
    awarded = call(client, world, "POST", "/red-flags/awards", "admin", {"period": "2026-Q3"})
    [flag] = awarded.get_json()["data"]["items"]
    url = f"/red-flags/awards/{flag['id']}/withdraw"
    assert call(client, world, "POST", url, "alice", {"reason": "弄虚作假"}).status_code == 403
    assert call(client, world, "POST", "/red-flags/awards/999999/withdraw", "admin", {"reason": "x"}).status_code == 404
    assert call(client, world, "POST", url, "admin", {"reason": "弄虚作假"}).status_code == 201
    again = call(client, world, "POST", url, "admin", {"reason": "弄虚作假"})
    assert again.status_code == 409 and again.get_json()["code"] == "award_already_withdrawn"
    [listed] = call(client, world, "GET", "/red-flags?period=2026-Q3", "alice").get_json()["data"]["items"]
    assert (listed["withdrawn"], listed["withdrawn_reason"], listed["organization"]["id"]) == (
        True, "弄虚作假", world["fin2"].id)
