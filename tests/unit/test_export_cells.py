"""Export cells and files without a database: Chinese headers, the formula-injection guard, numbers kept
numeric, identifiers as text, the CSV BOM, and an XLSX that spreadsheet libraries read back."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from points_service.domain.exports.annual import ANNUAL_COLUMNS, HEADERS, AnnualRow, guard_text, to_cells
from points_service.domain.exports.files import BOM, csv_chunks, write_csv, write_xlsx
from points_service.models import SubjectType


def row(**overrides) -> AnnualRow:
    values = dict(
        year=2025, subject_type=SubjectType.MEMBER, subject_id=7, name="张晓丽", code="", phone_masked="139****0001",
        department={"id": 1, "name": "市财政局党委"}, branch={"id": 2, "name": "财政局第一党支部"},
        total=Decimal("-12.50"), by_item=[{"item_code": "member.no_show", "name": "报名后无故缺席", "points": "-5.00",
                                          "count": 1}],
        activities=3, hours=Decimal("7.50"), rank_city=4, rank_group=None, stars=1, grade_by_score="差", grade="差",
        grade_reasons=[{"code": "not_reported", "message": "未到居住地社区报到"}])
    values.update(overrides)
    return AnnualRow(**values)


def cell(cells: list, header: str):
    return cells[HEADERS.index(header)]


@pytest.mark.parametrize("text", ["=1+1", "+86", "-2+3", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"http://x\")"])
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text):
    assert guard_text(text) == "'" + text


@pytest.mark.parametrize("text", ["张晓丽", "a=b", "", "139****0001", "'quoted"])
def test_ordinary_text_is_left_alone(text):
    assert guard_text(text) == text


def test_a_name_starting_with_equals_is_guarded_and_numbers_stay_numbers():
    cells = to_cells(row(name="=cmd|' /C calc'!A0"))
    assert cell(cells, "姓名/名称") == "'=cmd|' /C calc'!A0"
    assert cell(cells, "年度积分") == Decimal("-12.50") and cell(cells, "全市排名") == 4
    assert cell(cells, "编号") == "7"  # an identifier is text
    assert cell(cells, "部门内排名") is None


def test_the_headers_are_chinese_and_one_per_column():
    assert HEADERS[:6] == ("年度", "对象类型", "编号", "姓名/名称", "组织编码", "手机号（脱敏）")
    assert len(set(HEADERS)) == len(ANNUAL_COLUMNS)
    assert "结算后更正（分）" in HEADERS and not any("hash" in header.lower() for header in HEADERS)


def test_the_csv_starts_with_a_bom_and_the_headers_and_writes_numbers_plainly():
    data = b"".join(csv_chunks([row(), row(subject_id=8, name="-1+1")]))
    assert data.startswith(BOM)
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(lines[0]) == HEADERS
    assert lines[1][HEADERS.index("年度积分")] == "-12.50" and lines[1][HEADERS.index("部门内排名")] == ""
    assert lines[2][HEADERS.index("姓名/名称")] == "'-1+1"
    assert lines[1][HEADERS.index("等次说明")] == "未到居住地社区报到"


def test_write_csv_counts_its_rows_and_streams_in_chunks():
    stream = io.BytesIO()
    assert write_csv((row(subject_id=n) for n in range(1234)), stream) == 1234
    assert len(list(csv_chunks(row(subject_id=n) for n in range(1234)))) == 1 + 3  # header + ⌈1234/500⌉


def test_the_xlsx_reads_back_with_text_identifiers_numbers_and_a_frozen_header(tmp_path):
    path = tmp_path / "annual.xlsx"
    assert write_xlsx([row(), row(subject_id=8, name="@evil")], path) == 2
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes == "A2"
    assert tuple(c.value for c in sheet[1]) == HEADERS
    second = [c for c in sheet[2]]
    assert second[HEADERS.index("编号")].data_type == "s" and second[HEADERS.index("编号")].value == "7"
    assert second[HEADERS.index("年度积分")].value == -12.5 and second[HEADERS.index("年度积分")].data_type == "n"
    assert second[HEADERS.index("手机号（脱敏）")].value == "139****0001"
    assert sheet.cell(3, HEADERS.index("姓名/名称") + 1).value == "'@evil"
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert tuple(calamine[0]) == HEADERS and calamine[1][HEADERS.index("姓名/名称")] == "张晓丽"
    assert len(calamine) == 3
