"""A deactivated member's console session ends at his next request, and he cannot sign in again."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.periods import LOCAL_TZ
from points_service.models import (
    Affiliation,
    DeactivationReason,
    MemberStatusChange,
    Role,
    ScheduledChangeStatus,
    ScheduledMemberChange,
)
from tests.console.helpers import post, sign_in, text
from tests.factories import make_user


def test_a_secretary_who_retires_is_signed_out_and_refused(client, world):
    make_user((Role.BRANCH_SECRETARY, world["edu1"].id), username="carol_secretary", member=world["carol"])
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    db.session.commit()
    assert sign_in(client, "carol_secretary").headers["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    deactivate_member(principal_for(world["users"]["admin"]), world["carol"].id, DeactivationReason.RETIRED,
                      "到龄退休", date(2026, 11, 1))
    assert client.get("/console/").status_code == 302
    again = sign_in(client, "carol_secretary")
    assert again.status_code == 403 and "党员身份已停用" in again.get_data(as_text=True)  # the form, with why


def back_long_ago():
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    db.session.commit()


def test_hr_deactivates_a_member_of_his_department_with_a_reason_and_reactivates_him(client, world):
    back_long_ago()
    alice = world["alice"]
    sign_in(client, "finance_hr")
    page = text(client.get(f"/console/members/{alice.id}"))
    assert 'id="deactivate-form"' in page and 'id="transfer-form"' in page
    done = post(client, f"/console/members/{alice.id}/deactivate",
                {"reason_code": "resigned", "reason": "调离本市", "effective_on": "2026-11-01"}, follow_redirects=True)
    db.session.refresh(alice)
    assert not alice.is_active and "已停用" in text(done) and "调离本市" in text(done)
    change = db.session.scalar(sa.select(MemberStatusChange))
    assert (change.reason_code, change.effective_on) == (DeactivationReason.RESIGNED, date(2026, 11, 1))
    post(client, f"/console/members/{alice.id}/reactivate", {"reason": "返聘"})
    db.session.refresh(alice)
    assert alice.is_active


def test_a_future_date_schedules_the_change_which_the_page_lists_and_can_cancel(client, world):
    back_long_ago()
    alice = world["alice"]
    sign_in(client, "admin")
    post(client, f"/console/members/{alice.id}/transfer", {"branch_id": str(world["fin2"].id), "community_id": "",
                                                            "effective_on": "2099-01-01", "reason": "工作调动"})
    db.session.refresh(alice)
    change = db.session.scalar(sa.select(ScheduledMemberChange))
    assert alice.branch_id == world["fin1"].id and change.status == ScheduledChangeStatus.SCHEDULED
    page = text(client.get(f"/console/members/{alice.id}"))
    assert 'id="scheduled-changes"' in page and "待生效" in page and "2099-01-01" in page
    post(client, f"/console/members/{alice.id}/scheduled-changes/{change.id}/cancel", {"reason": "暂缓"})
    db.session.refresh(change)
    assert change.status == ScheduledChangeStatus.CANCELLED


def test_a_transfer_moves_him_now_and_a_bad_grid_is_explained(client, world):
    back_long_ago()
    alice = world["alice"]
    sign_in(client, "admin")
    wrong = post(client, f"/console/members/{alice.id}/transfer",
                 {"branch_id": "", "community_id": str(world["south"].id), "grid_id": str(world["north_grid"].id)},
                 follow_redirects=True)
    assert "网格不存在或不属于所选社区" in text(wrong)
    post(client, f"/console/members/{alice.id}/transfer", {"branch_id": str(world["fin2"].id), "community_id": ""})
    db.session.refresh(alice)
    assert alice.branch_id == world["fin2"].id


def test_status_actions_are_scope_limited_and_need_the_csrf_token(client, world):
    back_long_ago()
    carol = world["carol"]  # 教育局: outside finance HR's department
    sign_in(client, "finance_hr")
    post(client, f"/console/members/{carol.id}/deactivate",
         {"reason_code": "retired", "reason": "越权", "effective_on": "2026-11-01"})
    moved = post(client, f"/console/members/{world['alice'].id}/transfer",
                 {"branch_id": str(world["edu1"].id), "community_id": ""}, follow_redirects=True)
    assert "无权执行此操作" in text(moved) and world["alice"].branch_id == world["fin1"].id
    response = client.post(f"/console/members/{world['alice'].id}/deactivate",
                           data={"reason_code": "retired", "reason": "x", "effective_on": "2026-11-01"})
    assert response.status_code == 400
    db.session.expire_all()
    assert carol.is_active and world["alice"].is_active
    post(client, "/console/logout")
    sign_in(client, "secretary")  # a branch secretary sees his member but does not manage his status
    assert 'id="deactivate-form"' not in text(client.get(f"/console/members/{world['alice'].id}"))


def test_a_transfer_or_deactivation_naming_an_id_or_a_day_out_of_range_is_shown_under_its_field(client, world):
    back_long_ago()
    alice = world["alice"]
    sign_in(client, "admin")
    huge = "99999999999999999999"
    for body, message in (({"branch_id": "", "community_id": "", "grid_id": huge}, "编号不存在"),
                          ({"branch_id": huge, "community_id": ""}, "编号不存在"),
                          ({"branch_id": str(world["fin2"].id), "community_id": "", "effective_on": "0001-01-01"},
                           "须在 2000 年至 2200 年之间")):
        answer = post(client, f"/console/members/{alice.id}/transfer", body, follow_redirects=True)
        assert answer.status_code == 200 and message in text(answer), body
    answer = post(client, f"/console/members/{alice.id}/deactivate",
                  {"reason_code": "resigned", "reason": "调离", "effective_on": "0001-01-01"}, follow_redirects=True)
    assert answer.status_code == 200 and "须在 2000 年至 2200 年之间" in text(answer)
    db.session.refresh(alice)
    assert alice.is_active and alice.branch_id == world["fin1"].id
