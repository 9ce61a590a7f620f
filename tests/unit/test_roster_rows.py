"""Reading roster files and validating their rows, without a database."""

from __future__ import annotations

import pytest

from points_service.domain.roster.rows import (
    MemberRow,
    UnreadableFile,
    UnsupportedFileType,
    cell_text,
    parse_sheet,
    read_table,
)
from points_service.models import OrgKind, RegionLevel
from tests.roster_files import csv_bytes, with_part, xlsx_bytes


def parse(kind: str, content: bytes, filename: str = "file.csv", max_rows: int | None = None):
    rows, errors = parse_sheet(kind, read_table(content, filename), max_rows)
    return rows, [error.as_dict() for error in errors]


def member(name="张晓丽", phone="13800138000", branch="B1", community="北门社区", grid=""):
    return [name, phone, branch, community, grid]


# ---- files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_or_without_bom_gives_the_same_rows(bom):
    rows, errors = parse("members", csv_bytes("members", member(), bom=bom))
    assert errors == []
    assert rows == [MemberRow(2, "张晓丽", "13800138000", "B1", "北门社区", "")]


def test_a_phone_typed_as_a_number_in_excel_is_read_as_its_digits():
    rows, errors = parse("members", xlsx_bytes("members", member(phone=13800138000)), "名单.xlsx")
    assert errors == []
    assert rows[0].phone == "13800138000"


def test_xlsx_rows_are_numbered_as_excel_shows_them_even_below_empty_rows():
    content = xlsx_bytes("members", member(), member(phone="12"), first_row=2)
    _rows, errors = parse("members", content, "名单.XLSX")
    assert [(e["row"], e["field"]) for e in errors] == [(5, "手机号")]


def test_blank_lines_are_skipped_but_keep_their_row_numbers():
    content = csv_bytes("members", member(), ["", "", "", "", ""], member(name="", phone="13900139000"))
    _rows, errors = parse("members", content)
    assert errors == [{"row": 4, "field": "姓名", "message": "不能为空"}]


@pytest.mark.parametrize("value, text", [
    (13800138000.0, "13800138000"),
    (370811001001.0, "370811001001"),
    (1.5, "1.5"),
    ("  北门社区 ", "北门社区"),
    (None, ""),
    (7, "7"),
])
def test_cells_become_the_text_the_user_meant(value, text):
    assert cell_text(value) == text


def test_a_number_excel_has_already_rounded_cannot_be_repaired_and_is_refused():
    with pytest.raises(ValueError, match="15 位"):
        cell_text(370811001001001001.0)


def test_an_identifier_excel_turned_into_scientific_notation_is_refused_with_the_reason():
    content = csv_bytes("regions", ["3.70811E+14", "北门社区", "社区", "370811001"])
    _rows, errors = parse("regions", content)
    assert errors[0]["field"] == "区划编码" and "科学计数法" in errors[0]["message"]


def test_a_csv_that_is_not_utf8_is_unreadable_with_advice():
    with pytest.raises(UnreadableFile, match="UTF-8"):
        read_table("姓名,手机号\n".encode("gb18030"), "名单.csv")


def test_a_corrupt_xlsx_is_unreadable():
    with pytest.raises(UnreadableFile):
        read_table(b"PK\x03\x04 not really a workbook", "名单.xlsx")


def test_an_xlsx_with_one_value_in_its_last_cell_is_refused_before_its_grid_is_built():
    # The reader would lay out 16,384 × 1,048,576 cells from A1 to XFD1048576 and abort the worker.
    content = xlsx_bytes("members", member(), cells={(1_048_575, 16_383): "x"})
    with pytest.raises(UnreadableFile, match="数据区域"):
        read_table(content, "名单.xlsx")


def test_an_xlsx_that_unpacks_to_far_more_than_a_roster_is_refused_before_it_is_read():
    padding = b"<sst><si><t>" + b"a" * (65 * 1024 * 1024) + b"</t></si></sst>"
    content = with_part(xlsx_bytes("members", member()), "xl/padding.xml", padding)
    assert len(content) < 1024 * 1024
    with pytest.raises(UnreadableFile, match="解压后"):
        read_table(content, "名单.xlsx")


def test_an_xlsx_with_styled_cells_far_beyond_its_data_reads_its_rows():
    rows, errors = parse("members", xlsx_bytes("members", member(), cells={(99_999, 25): ""}), "名单.xlsx")
    assert errors == [] and [row.name for row in rows] == ["张晓丽"]


def test_an_empty_upload_is_unreadable():
    with pytest.raises(UnreadableFile):
        read_table(b"", "名单.csv")


@pytest.mark.parametrize("filename", ["名单.xls", "名单.txt", "名单", ""])
def test_other_file_types_are_unsupported(filename):
    with pytest.raises(UnsupportedFileType) as caught:
        read_table(b"a,b\n", filename)
    assert caught.value.status == 415


# ---- header --------------------------------------------------------------------------------------------

def test_a_missing_column_is_reported_on_row_one_by_name():
    header = ["姓名", "手机号", "所在支部", "居住社区"]
    content = csv_bytes("members", ["张晓丽", "13800138000", "B1", "北门社区"], header=header)
    rows, errors = parse("members", content)
    assert rows == [] and errors == [{"row": 1, "field": "网格", "message": "表头缺少列“网格”"}]


def test_extra_columns_are_ignored_and_columns_may_come_in_any_order():
    header = ["序号", "网格", "居住社区", "所在支部", "手机号", "姓名", "备注"]
    content = csv_bytes("members", ["1", "", "北门社区", "B1", "13800138000", "张晓丽", "新调入"], header=header)
    rows, errors = parse("members", content)
    assert errors == [] and rows[0].name == "张晓丽" and rows[0].community == "北门社区"


def test_a_file_with_only_a_header_has_no_rows_to_import():
    _rows, errors = parse("members", csv_bytes("members"))
    assert errors == [{"row": 2, "field": None, "message": "文件中没有数据行"}]


def test_too_many_rows_are_refused_naming_the_first_row_over_the_limit():
    content = csv_bytes("members", *[member(phone=f"139{n:08d}") for n in range(4)])
    _rows, errors = parse("members", content, max_rows=3)
    assert [e["row"] for e in errors] == [5] and "3 行" in errors[0]["message"]


# ---- members -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", [
    "＋８６ １３８００１３８０００", "+86 138-0013-8000", "008613800138000", "8613800138000"])
def test_full_width_digits_and_the_country_code_are_normalized(typed):
    rows, errors = parse("members", csv_bytes("members", member(phone=typed)))
    assert errors == [] and rows[0].phone == "13800138000"


@pytest.mark.parametrize("name", ["李·建国", "王𠮷", "阿依古丽·买买提", "欧阳" + "娜" * 48])
def test_names_with_middle_dots_and_characters_beyond_the_bmp_are_kept_exactly(name):
    rows, errors = parse("members", csv_bytes("members", member(name=name)))
    assert errors == [] and rows[0].name == name


@pytest.mark.parametrize("name", ["张\x07三", "张\u202e三", "张\u200b三", "张\ue000三"])
def test_control_bidi_and_invisible_characters_are_refused(name):
    _rows, errors = parse("members", csv_bytes("members", member(name=name)))
    assert errors == [{"row": 2, "field": "姓名", "message": "包含不允许的控制字符或不可见字符"}]


def test_every_bad_row_and_every_bad_cell_is_reported():
    content = csv_bytes("members", member(), member(name="", phone="12345"), member(phone="13900139000"),
                        member(phone="13700137000", branch="", community=""))
    _rows, errors = parse("members", content)
    assert [(e["row"], e["field"]) for e in errors] == [
        (3, "姓名"), (3, "手机号"), (5, "所在支部"), (5, "居住社区")]
    assert "手机号格式不正确" in errors[1]["message"]


def test_a_phone_listed_twice_is_reported_on_the_later_row():
    content = csv_bytes("members", member(), member(name="张晓丽二"), member(phone="＋86 13800138000"))
    _rows, errors = parse("members", content)
    assert errors == [
        {"row": 3, "field": "手机号", "message": "手机号与第 2 行重复"},
        {"row": 4, "field": "手机号", "message": "手机号与第 2 行重复"},
    ]


def test_a_name_longer_than_fifty_characters_is_refused():
    _rows, errors = parse("members", csv_bytes("members", member(name="娜" * 51)))
    assert errors[0]["message"] == "不能超过 50 个字符"


# ---- regions and organizations -------------------------------------------------------------------------

def test_region_levels_are_read_from_their_chinese_names():
    content = csv_bytes("regions", ["370800", "济宁市", "市", ""], ["370811", "任城区", "区县", "370800"],
                        ["370811001", "古槐街道", "街道", "370811"], ["C1", "北门社区", "社区", "370811001"],
                        ["G1", "北门一网格", "网格", "C1"])
    rows, errors = parse("regions", content)
    assert errors == []
    assert [row.level for row in rows] == list(RegionLevel)


@pytest.mark.parametrize("level, parent, message", [
    ("市", "370000", "市级区划不填上级编码"),
    ("社区", "", "除市级外必须填写上级编码"),
    ("小区", "370811001", "“小区”不是可选值"),
])
def test_region_rows_must_state_a_parent_exactly_when_they_need_one(level, parent, message):
    _rows, errors = parse("regions", csv_bytes("regions", ["C1", "北门社区", level, parent]))
    assert len(errors) == 1 and errors[0]["message"].startswith(message)


def test_a_region_code_listed_twice_is_reported():
    content = csv_bytes("regions", ["370800", "济宁市", "市", ""], ["370800", "济宁", "市", ""])
    _rows, errors = parse("regions", content)
    assert errors == [{"row": 3, "field": "区划编码", "message": "区划编码与第 2 行重复"}]


@pytest.mark.parametrize("word", ["部门党组织", "党委", "党总支"])
def test_party_committees_and_general_branches_are_department_organizations(word):
    rows, errors = parse("organizations", csv_bytes("organizations", ["D1", "市财政局机关党委", word, "", "北门社区"]))
    assert errors == [] and rows[0].kind is OrgKind.DEPARTMENT and rows[0].paired_community == "北门社区"


@pytest.mark.parametrize("row, field", [
    (["B1", "第一党支部", "党支部", "", ""], "上级组织编码"),
    (["B1", "第一党支部", "党支部", "D1", "北门社区"], "结对社区"),
    (["D1", "市财政局机关党委", "党委", "D0", ""], "上级组织编码"),
])
def test_organization_rows_follow_department_and_branch_rules(row, field):
    _rows, errors = parse("organizations", csv_bytes("organizations", row))
    assert [e["field"] for e in errors] == [field]
