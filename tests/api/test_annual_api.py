"""POST /annual/{year}/settle and GET /annual/{year}/scores: JSON pages, CSV with BOM, XLSX read back,
masking, the injection guard, HR scope (403 outside), bad arguments (422), and an audit row per export."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from python_calamine import CalamineWorkbook

from points_service.db import db
from points_service.domain.exports.annual import HEADERS
from points_service.models import AuditEntry, Member, SubjectType
from tests.factories import auth_header, make_member, make_world
from tests.factories.annual import YEAR, reported, score, settled
from tests.factories.ledger import local

FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
URL = f"/api/v1/annual/{YEAR}/scores"


@pytest.fixture
def world(app):
    world = make_world()
    world["mallory"] = make_member(world["fin2"], world["south"], name="=HYPERLINK(\"http://x\",\"点我\")")
    db.session.commit()
    for name, points in (("alice", 92), ("bob", 80), ("carol", 70), ("mallory", 65)):
        score(world, world[name], points)
    score(world, world["finance"], 88, subject_type=SubjectType.ORGANIZATION)
    reported(world["alice"], world["bob"], world["carol"], world["mallory"])
    return world


def get(client, world, role="admin", query=""):
    return client.get(f"{URL}{query}", headers=auth_header(world["users"][role]))


def json_items(client, world, role="admin", query="", page_size=2) -> list[dict]:
    items, page = [], 1
    while True:
        sep = "&" if query else "?"
        data = get(client, world, role, f"{query}{sep}page={page}&page_size={page_size}").get_json()["data"]
        items += data["items"]
        if page * page_size >= data["total"]:
            return items
        page += 1


def exports() -> list[dict]:
    return [entry.detail for entry in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "annual.export").order_by(AuditEntry.id))]


def test_an_admin_settles_a_year_once(client, world):
    headers = auth_header(world["users"]["admin"])
    response = client.post(f"/api/v1/annual/{YEAR}/settle", headers=headers)
    assert response.status_code == 201
    data = response.get_json()["data"]
    assert data["year"] == YEAR and data["member_count"] == 4 and data["cutoff_at"] == "2026-01-01T00:00:00+08:00"
    again = client.post(f"/api/v1/annual/{YEAR}/settle", headers=headers)
    assert again.status_code == 409 and again.get_json()["code"] == "already_settled"
    assert client.get(f"/api/v1/annual/{YEAR}", headers=headers).get_json()["data"]["checksum"] == data["checksum"]


@pytest.mark.parametrize("role", ["hr", "secretary", "alice"])
def test_only_admins_settle(client, world, role):
    response = client.post(f"/api/v1/annual/{YEAR}/settle", headers=auth_header(world["users"][role]))
    assert response.status_code == 403


def test_json_pages_show_the_frozen_statement_in_ranking_order(client, world):
    settled(world)
    items = json_items(client, world)
    assert [i["subject"]["name"] for i in items][:3] == ["张晓丽", "李·建国", "王𠮷"]
    alice = items[0]
    assert (alice["total"], alice["rank_city"], alice["rank_group"], alice["grade"]) == (92, 1, 1, "优秀")
    assert re.fullmatch(r"139\*{4}\d{4}", alice["phone_masked"])
    assert alice["department"]["name"] == "市财政局党委" and alice["branch"]["name"] == "财政局第一党支部"
    assert alice["by_item"] == [{"item_code": "admin.adjustment", "name": "管理员调整", "points": 92, "count": 1}]
    assert alice["corrections_after_settlement"] == {"points": 0, "entries": []}


def test_a_correction_after_settlement_shows_next_to_the_unchanged_statement(client, world):
    settled(world)
    fix = score(world, world["bob"], "-4.50", at=local(YEAR + 1, 1, 15))
    bob = next(i for i in json_items(client, world) if i["subject"]["id"] == world["bob"].id)
    assert bob["total"] == 80 and bob["grade"] == "较好"
    correction = bob["corrections_after_settlement"]
    assert correction["points"] == -4.5 and correction["entries"][0]["entry_id"] == fix.id
    assert correction["entries"][0]["audit_id"] is not None
    csv_rows = list(csv.DictReader(io.StringIO(get(client, world, query="?format=csv").get_data().decode("utf-8-sig"))))
    bob_row = next(r for r in csv_rows if r["编号"] == str(world["bob"].id))
    assert bob_row["年度积分"] == "80.00" and bob_row["结算后更正（分）"] == "-4.50"
    assert f"台账#{fix.id}" in bob_row["更正记录"]


def test_the_csv_has_a_bom_chinese_headers_masked_phones_and_guarded_text(client, world):
    settled(world)
    response = get(client, world, query="?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="annual-{YEAR}-member.csv"'
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(rows[0]) == HEADERS and len(rows) == 5
    text = body.decode("utf-8-sig")
    assert not FULL_PHONE.search(text)
    for phone_hash in db.session.scalars(sa.select(Member.phone_hash)):
        assert phone_hash not in text
    mallory = next(r for r in rows if r[HEADERS.index("编号")] == str(world["mallory"].id))
    assert mallory[HEADERS.index("姓名/名称")] == "'=HYPERLINK(\"http://x\",\"点我\")"


def test_the_xlsx_reads_back_with_the_same_rows_as_the_json_pages(client, world):
    settled(world)
    response = get(client, world, query="?format=xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f"annual-{YEAR}-member.xlsx")
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(response.get_data())).get_sheet_by_index(0).to_python()
    assert tuple(sheet[0]) == HEADERS
    column = {header: index for index, header in enumerate(HEADERS)}
    from_file = [(r[column["编号"]], r[column["姓名/名称"]], r[column["年度积分"]], r[column["全市排名"]],
                  r[column["评定等次"]], r[column["手机号（脱敏）"]]) for r in sheet[1:]]
    from_json = [(str(i["subject"]["id"]), i["subject"]["name"], float(i["total"]), i["rank_city"], i["grade"],
                  i["phone_masked"]) for i in json_items(client, world)]
    from_json = [(*row[:1], "'" + row[1] if row[1].startswith("=") else row[1], *row[2:]) for row in from_json]
    assert [(a, b, c, int(d), e, f) for a, b, c, d, e, f in from_file] == from_json


def test_organizations_are_exported_too(client, world):
    settled(world)
    items = json_items(client, world, query="?subject=organization")
    assert [(i["subject"]["name"], i["total"]) for i in items] == [("市财政局党委", 88), ("市教育局党委", 0)]
    assert items[0]["phone_masked"] is None and items[0]["subject"]["code"]


def test_hr_sees_only_its_department_and_may_narrow_to_a_branch_inside_it(client, world):
    settled(world)
    names = {i["subject"]["name"] for i in json_items(client, world, "hr")}
    assert names == {"张晓丽", "李·建国", world["mallory"].name}
    narrowed = json_items(client, world, "hr", f"?organization_id={world['fin1'].id}")
    assert [i["subject"]["name"] for i in narrowed] == ["张晓丽"]


@pytest.mark.parametrize(("role", "org"), [("hr", "education"), ("hr", "edu1"), ("secretary", None),
                                           ("community_admin", None), ("alice", None), ("secretary", "fin1")])
def test_outside_the_hr_scope_is_403_and_exports_nothing(client, world, role, org):
    settled(world)
    query = f"?organization_id={world[org].id}" if org else ""
    for fmt in ("json", "csv", "xlsx"):
        response = get(client, world, role, f"{query}{'&' if query else '?'}format={fmt}")
        assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    assert exports() == []


@pytest.mark.parametrize("query", ["?format=pdf", "?subject=people", "?page=0", "?organization_id=abc", "?colour=red"])
def test_bad_arguments_are_422_with_the_field_named(client, world, query):
    settled(world)
    response = get(client, world, query=query)
    assert response.status_code == 422
    assert query[1:].split("=")[0] in response.get_json()["data"]["errors"]


def test_a_year_out_of_range_is_422_and_an_unsettled_year_is_404(client, world):
    assert client.get("/api/v1/annual/1999/scores", headers=auth_header(world["users"]["admin"])).status_code == 422
    response = get(client, world)
    assert response.status_code == 404 and response.get_json()["code"] == "not_settled"


def test_every_export_is_audited_with_who_what_scope_format_and_rows(client, world):
    settled(world)
    get(client, world, "hr", "?page_size=2")
    get(client, world, "hr", "?format=csv")
    get(client, world, query=f"?format=xlsx&subject=organization&organization_id={world['finance'].id}")
    assert exports() == [
        {"year": YEAR, "subject": "member", "scope": "hr_scope", "format": "json", "rows": 2, "via": "api", "page": 1},
        {"year": YEAR, "subject": "member", "scope": "hr_scope", "format": "csv", "rows": 3, "via": "api"},
        {"year": YEAR, "subject": "organization", "scope": f"organization:{world['finance'].id}", "format": "xlsx",
         "rows": 1, "via": "api"},
    ]
    actors = db.session.scalars(sa.select(AuditEntry.actor_id).where(AuditEntry.action == "annual.export")).all()
    assert actors == [world["users"]["hr"].id] * 2 + [world["users"]["admin"].id]
