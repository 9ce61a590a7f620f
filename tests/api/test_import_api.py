"""POST /admin/import/{regions,organizations,members}: uploads, row reports, status codes, access."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import Member, Region
from tests.factories import auth_header, make_world
from tests.roster_files import csv_bytes, xlsx_bytes

IMPORT = "/api/v1/admin/import"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEMBER_ROW = ["赵新", "13800138000", "财政局第一党支部", "北门社区", "北门一网格"]


@pytest.fixture
def world(app):
    return make_world()


def upload(client, world, kind, content: bytes, *, filename="名单.csv", user="admin", query=""):
    return client.post(f"{IMPORT}/{kind}{query}", data={"file": (io.BytesIO(content), filename)},
                       content_type="multipart/form-data", headers=auth_header(world["users"][user]))


def member_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Member))


def test_an_admin_uploads_a_csv_and_gets_the_counts(client, world):
    response = upload(client, world, "members", csv_bytes("members", MEMBER_ROW, bom=True))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"kind": "members", "dry_run": False, "created": 1, "updated": 0,
                                           "scheduled": 0, "unchanged": 0, "errors": []}


def test_a_dry_run_answers_the_report_and_writes_nothing(client, world):
    before = member_count()
    response = upload(client, world, "members", csv_bytes("members", MEMBER_ROW), query="?dry_run=1")
    assert response.status_code == 200
    assert response.get_json()["data"]["created"] == 1 and response.get_json()["data"]["dry_run"] is True
    assert member_count() == before


def test_an_invalid_file_is_422_listing_each_bad_row_and_nothing_is_written(client, world):
    before = member_count()
    content = csv_bytes("members", MEMBER_ROW, ["钱多", "12345", "财政局第一党支部", "北门社区", ""],
                        ["孙少", "13900139000", "不存在的支部", "北门社区", ""])
    response = upload(client, world, "members", content)
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == "import_invalid"
    assert [(e["row"], e["field"]) for e in body["data"]["errors"]] == [(3, "手机号"), (4, "所在支部")]
    assert "不存在的支部" in body["data"]["errors"][1]["message"]
    assert member_count() == before


def test_an_xlsx_with_a_numeric_phone_cell_is_accepted(client, world):
    content = xlsx_bytes("members", [*MEMBER_ROW[:1], 13800138000, *MEMBER_ROW[2:]])
    response = upload(client, world, "members", content, filename="名单.xlsx")
    assert response.status_code == 200 and response.get_json()["data"]["created"] == 1


@pytest.mark.parametrize("mimetype, content", [
    ("text/csv", csv_bytes("members", MEMBER_ROW)),
    (XLSX_MIME, xlsx_bytes("members", MEMBER_ROW)),
])
def test_the_file_may_also_be_sent_as_the_raw_body(client, world, mimetype, content):
    response = client.post(f"{IMPORT}/members", data=content, content_type=mimetype,
                           headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 200 and response.get_json()["data"]["created"] == 1


def test_a_multipart_form_without_a_file_is_422_naming_file(client, world):
    response = client.post(f"{IMPORT}/members", data={"file": "姓名,手机号"}, content_type="multipart/form-data",
                           headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 422 and list(response.get_json()["data"]["errors"]) == ["file"]


def test_a_json_body_is_415(client, world):
    response = client.post(f"{IMPORT}/members", json={"rows": []}, headers=auth_header(world["users"]["admin"]))
    assert response.status_code == 415 and response.get_json()["code"] == "unsupported_media_type"


def test_a_file_of_another_type_is_415(client, world):
    response = upload(client, world, "members", b"\xd0\xcf\x11\xe0 old excel", filename="名单.xls")
    assert response.status_code == 415


def test_a_corrupt_workbook_is_400(client, world):
    response = upload(client, world, "members", b"PK\x03\x04 broken", filename="名单.xlsx")
    assert response.status_code == 400 and response.get_json()["code"] == "file_unreadable"


def test_dry_run_must_be_a_boolean(client, world):
    response = upload(client, world, "members", csv_bytes("members", MEMBER_ROW), query="?dry_run=maybe")
    assert response.status_code == 422 and list(response.get_json()["data"]["errors"]) == ["dry_run"]


def test_an_admin_imports_regions_and_organizations(client, world):
    regions = csv_bytes("regions", ["C9", "东门社区", "社区", world["street"].code])
    assert upload(client, world, "regions", regions).status_code == 200
    organizations = csv_bytes("organizations", ["T", "市税务局机关党委", "党委", "", "东门社区"])
    assert upload(client, world, "organizations", organizations).status_code == 200
    assert db.session.scalar(sa.select(Region.name).where(Region.code == "C9")) == "东门社区"


@pytest.mark.parametrize("kind", ["regions", "organizations", "members"])
@pytest.mark.parametrize("user", ["alice", "secretary", "community_admin"])
def test_members_and_other_roles_are_forbidden_from_every_import_route(client, world, kind, user):
    content = csv_bytes("members", MEMBER_ROW)
    response = upload(client, world, kind, content, user=user)
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


@pytest.mark.parametrize("kind, status", [("regions", 403), ("organizations", 403), ("members", 200)])
def test_hr_imports_members_only(client, world, kind, status):
    assert upload(client, world, kind, csv_bytes("members", MEMBER_ROW), user="hr").status_code == status


def test_hr_rows_for_another_department_are_refused(client, world):
    row = ["钱多", "13900139000", "教育局第一党支部", "北门社区", ""]
    response = upload(client, world, "members", csv_bytes("members", MEMBER_ROW, row), user="hr")
    assert response.status_code == 422
    assert [(e["row"], e["field"]) for e in response.get_json()["data"]["errors"]] == [(3, "所在支部")]


def test_anonymous_callers_must_log_in(client):
    response = client.post(f"{IMPORT}/members", data={"file": (io.BytesIO(b"x"), "a.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 401


def test_the_upload_is_documented_as_multipart_with_a_dry_run_parameter(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/admin/import/{kind}"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert spec["components"]["schemas"][body]["properties"]["file"]["format"] == "binary"
    assert [parameter["name"] for parameter in operation["parameters"]] == ["dry_run"]


def test_an_upload_over_the_row_cap_is_refused_pointing_at_the_first_row_over_it(client, world):
    from points_service.domain.roster.importing import MAX_ROWS

    rows = [["党员", f"137{n:08d}", "财政局第一党支部", "北门社区", ""] for n in range(MAX_ROWS + 1)]
    response = upload(client, world, "members", csv_bytes("members", *rows))
    assert response.status_code == 422
    assert [e["row"] for e in response.get_json()["data"]["errors"]] == [MAX_ROWS + 2]
