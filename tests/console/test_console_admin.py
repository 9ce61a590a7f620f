"""Admin pages: roster import (dry run with row errors in a table, then confirm), policy versions (a bad
upload shows each field's error; a what-if preview; publishing), users and role grants."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import sqlalchemy as sa
import yaml

from config.settings import DEFAULT_POLICY_FILE
from points_service.db import db
from points_service.models import Member, PolicyVersion, Role, RoleGrant, User
from tests.console.helpers import post, sign_in, text
from tests.roster_files import csv_bytes

DEFAULT_YAML = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def members_csv(*rows) -> tuple[io.BytesIO, str]:
    return io.BytesIO(csv_bytes("members", *rows)), "members.csv"


def members() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Member))


def test_a_dry_run_lists_every_row_error_and_writes_nothing(client, world):
    sign_in(client, "admin")
    before = members()
    response = post(client, "/console/admin/roster", {"kind": "members", "file": members_csv(
        ["赵一", "13800000001", "财政局第一党支部", "北门社区", ""],
        ["钱二", "12345", "不存在的支部", "北门社区", ""])}, content_type="multipart/form-data")
    html = text(response)
    assert 'id="import-errors"' in html and "<td>3</td>" in html  # the spreadsheet's row number
    assert "confirm-import" not in html
    assert members() == before


def test_a_valid_file_is_checked_first_and_written_only_after_confirmation(client, world):
    sign_in(client, "admin")
    before = members()
    checked = text(post(client, "/console/admin/roster", {"kind": "members", "file": members_csv(
        ["赵一", "13800000001", "财政局第一党支部", "北门社区", ""])}, content_type="multipart/form-data"))
    assert "将新增 <strong>1</strong>" in checked and "确认导入" in checked
    assert members() == before
    post(client, "/console/admin/roster/confirm")
    assert members() == before + 1
    again = post(client, "/console/admin/roster/confirm")  # the staged file is gone after use
    assert "没有待确认的导入" in text(client.get(again.headers["Location"]))


def test_the_check_counts_a_deactivation_dated_after_today_as_scheduled(client, world):
    sign_in(client, "admin")
    post(client, "/console/admin/roster", {"kind": "members", "file": members_csv(
        ["赵一", "13800000001", "财政局第一党支部", "北门社区", ""])}, content_type="multipart/form-data")
    post(client, "/console/admin/roster/confirm")
    header = ["姓名", "手机号", "所在支部", "居住社区", "网格", "状态", "状态生效日期", "状态说明"]
    status_file = io.BytesIO(csv_bytes("members", ["赵一", "13800000001", "财政局第一党支部", "北门社区", "", "离职",
                                                   "2099-01-01", "调往外地"], header=header)), "members.csv"
    checked = text(post(client, "/console/admin/roster", {"kind": "members", "file": status_file},
                        content_type="multipart/form-data"))
    assert "登记待生效停用 <strong>1</strong>" in checked and "确认导入" in checked


def test_hr_may_not_import_regions(client, world):
    sign_in(client, "finance_hr")
    html = text(post(client, "/console/admin/roster", {"kind": "regions", "file": (io.BytesIO(b"x"), "r.csv")},
                     content_type="multipart/form-data"))
    assert "无权" in html


def tomorrow() -> str:
    return (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT09:00")


def test_a_bad_policy_shows_the_field_and_its_message_and_is_not_published(client, world):
    document = yaml.safe_load(DEFAULT_YAML)
    document["items"]["member.activity_hour"]["points"] = "很多"
    sign_in(client, "admin")
    response = post(client, "/console/admin/policy", {"text": yaml.safe_dump(document, allow_unicode=True),
                                                      "effective_from": tomorrow(), "action": "publish"})
    html = text(response)
    assert response.status_code == 422
    assert "items.member.activity_hour.points" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)) == 1


def test_unparsable_yaml_names_its_line(client, world):
    sign_in(client, "admin")
    html = text(post(client, "/console/admin/policy", {"text": "items: [\n  - a: b\n c", "action": "preview"}))
    assert "第" in html and "行" in html and 'id="policy-errors"' in html


def test_a_preview_shows_a_table_and_publishing_adds_a_version(client, world):
    sign_in(client, "admin")
    preview = text(post(client, "/console/admin/policy", {"text": DEFAULT_YAML, "period": "2026",
                                                          "subject_type": "member", "action": "preview"}))
    assert 'id="policy-preview"' in preview
    post(client, "/console/admin/policy", {"text": DEFAULT_YAML, "effective_from": tomorrow(), "note": "2027年度",
                                           "action": "publish"})
    assert db.session.scalar(sa.select(sa.func.max(PolicyVersion.version))) == 2
    assert "2027年度" in text(client.get("/console/admin/policy"))


def test_only_admins_reach_the_policy_and_users_pages(client, world):
    sign_in(client, "north_admin")
    assert client.get("/console/admin/policy").status_code == 403
    assert client.get("/console/admin/users").status_code == 403


def test_creating_a_user_granting_and_revoking_a_role(client, world):
    sign_in(client, "admin")
    created = post(client, "/console/admin/users", {"username": "south_secretary", "display_name": "孙书记",
                                                    "password": "a-strong-pass-9", "role": "community_admin",
                                                    "scope": world["south"].code})
    assert created.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.username == "south_secretary"))
    post(client, f"/console/admin/users/{user.id}", {"role": "branch_secretary", "scope": world["fin2"].code})
    db.session.expire_all()
    assert {g.role for g in user.grants} == {Role.COMMUNITY_ADMIN, Role.BRANCH_SECRETARY}
    grant = next(g for g in user.grants if g.role == Role.BRANCH_SECRETARY)
    post(client, f"/console/admin/users/{user.id}/grants/{grant.id}/revoke")
    assert db.session.get(RoleGrant, grant.id) is None


def test_a_weak_password_and_an_unknown_scope_are_shown_under_their_fields(client, world):
    sign_in(client, "admin")
    weak = text(post(client, "/console/admin/users", {"username": "weakling", "password": "short",
                                                      "role": "admin", "scope": ""}))
    assert 'data-field="password"' in weak
    unknown = text(post(client, "/console/admin/users", {"username": "nobody1", "password": "a-strong-pass-9",
                                                         "role": "hr", "scope": "NO-SUCH-CODE"}))
    assert 'data-field="scope"' in unknown


def test_a_username_ending_in_a_newline_is_refused_under_its_field(client, world):
    sign_in(client, "admin")
    page = text(post(client, "/console/admin/users", {"username": "alice2\n", "password": "a-strong-pass-9",
                                                      "role": "admin", "scope": ""}))
    assert 'data-field="username"' in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username.like("alice2%"))) == 0


def test_a_scope_typed_as_an_id_past_a_row_ids_range_is_an_unknown_scope(client, world):
    sign_in(client, "admin")
    for scope in ("2147483648", "99999999999999999999"):
        page = post(client, "/console/admin/users", {"username": "nobody2", "password": "a-strong-pass-9",
                                                     "role": "hr", "scope": scope})
        assert page.status_code == 200 and 'data-field="scope"' in text(page), scope
        granted = post(client, f"/console/admin/users/{world['users']['hr'].id}", {"role": "hr", "scope": scope})
        assert granted.status_code == 200 and 'data-field="scope"' in text(granted), scope
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username == "nobody2")) == 0
