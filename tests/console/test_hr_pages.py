"""年度考核 pages: HR's statements (its departments only), the grade chart, XLSX/CSV downloads equal to the
API's rows and audited like them, refusals outside the HR scope, and a year not yet settled."""

from __future__ import annotations

import io
import json
import re

import pytest
import sqlalchemy as sa
from python_calamine import CalamineWorkbook

from points_service.db import db
from points_service.domain.exports.annual import HEADERS
from points_service.models import AuditEntry
from tests.console.helpers import sign_in, text
from tests.factories import auth_header
from tests.factories.annual import YEAR, reported, score, settled

CHART = re.compile(r"id=\"grade-chart\" data-chart='([^']*)'")


@pytest.fixture
def annual(world):
    for name, points in (("alice", 92), ("bob", 80), ("carol", 70)):
        score(world, world[name], points)
    reported(world["alice"], world["bob"], world["carol"])
    settled(world)
    return world


def exports() -> list[dict]:
    return [entry.detail for entry in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "annual.export").order_by(AuditEntry.id))]


def api_rows(client, world, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/annual/{YEAR}/scores?page_size=100{query}",
                          headers=auth_header(world["users"]["hr"]))
    return response.get_json()["data"]["items"]


def test_hr_sees_its_departments_statements_with_a_grade_chart(client, annual):
    sign_in(client, "finance_hr")
    page = text(client.get(f"/console/hr?year={YEAR}"))
    assert "张晓丽" in page and "李·建国" in page and "王𠮷" not in page  # carol is in education
    assert re.search(r'id="statement-total">2<', page)
    option = json.loads(CHART.search(page).group(1).replace("&#34;", '"'))
    assert option["xAxis"]["data"] == ["优秀", "较好", "一般", "差"]
    assert option["series"][0]["data"] == [1.0, 1.0, 0.0, 0.0]
    assert exports()[-1] == {"year": YEAR, "subject": "member", "scope": "hr_scope", "format": "html", "rows": 2,
                             "via": "console", "page": 1}


def test_the_xlsx_download_has_the_apis_rows_and_is_audited(client, annual):
    sign_in(client, "finance_hr")
    response = client.get(f"/console/hr/{YEAR}/scores.xlsx?subject=member")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f"annual-{YEAR}-member.xlsx")
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(response.get_data())).get_sheet_by_index(0).to_python()
    assert tuple(sheet[0]) == HEADERS
    column = {header: index for index, header in enumerate(HEADERS)}
    from_file = [(r[column["编号"]], r[column["姓名/名称"]], float(r[column["年度积分"]]), r[column["评定等次"]])
                 for r in sheet[1:]]
    assert from_file == [(str(i["subject"]["id"]), i["subject"]["name"], float(i["total"]), i["grade"])
                         for i in api_rows(client, annual)]
    assert {"format": "xlsx", "via": "console", "rows": 2}.items() <= exports()[0].items()


def test_the_csv_download_starts_with_a_bom(client, annual):
    sign_in(client, "finance_hr")
    response = client.get(f"/console/hr/{YEAR}/scores.csv")
    assert response.status_code == 200 and response.get_data().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("url", [f"/console/hr?year={YEAR}&organization_id={{education}}",
                                 f"/console/hr/{YEAR}/scores.xlsx?organization_id={{education}}"])
def test_another_departments_statements_are_refused(client, annual, url):
    sign_in(client, "finance_hr")
    response = client.get(url.format(education=annual["education"].id))
    assert response.status_code == 403 and exports() == []


@pytest.mark.parametrize("username", ["secretary", "north_admin"])
def test_users_without_an_hr_scope_are_refused(client, annual, username):
    sign_in(client, username)
    assert client.get(f"/console/hr?year={YEAR}").status_code == 403
    assert client.get(f"/console/hr/{YEAR}/scores.csv").status_code == 403


def test_a_year_not_yet_settled_says_so(client, world):
    sign_in(client, "finance_hr")
    page = text(client.get(f"/console/hr?year={YEAR}"))
    assert 'id="not-settled"' in page and "尚未结算" in page


def test_the_admin_narrows_to_a_department(client, annual):
    sign_in(client, "admin")
    page = text(client.get(f"/console/hr?year={YEAR}&organization_id={annual['education'].id}"))
    assert "王𠮷" in page and "张晓丽" not in page


@pytest.mark.parametrize("query", ["year=²⁰²⁶", "organization_id=²", "year=２０２５&organization_id=٣"])
def test_digits_other_than_ascii_in_the_query_are_ignored_like_any_other_bad_value(client, annual, query):
    sign_in(client, "finance_hr")
    response = client.get(f"/console/hr?{query}")
    assert response.status_code == 200 and 'id="grade-chart"' in text(response)
