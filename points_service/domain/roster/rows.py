"""Roster files (.xlsx / .csv) read into validated rows. No database here: references to branches,
communities and parents stay text until ``roster_import`` resolves them.

Row numbers are the ones the user sees in the spreadsheet (the header is row 1 when it is on the first
line), so every reported error can be found and fixed in the file itself.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath

from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from points_service.domain.errors import ServiceError
from points_service.domain.periods import OUTSIDE_YEARS, within_years
from points_service.domain.phones import BadPhone, normalize_phone
from points_service.domain.roster import workbooks
from points_service.models import DEACTIVATION_REASON_NAMES, DeactivationReason, OrgKind, RegionLevel

KINDS = ("regions", "organizations", "members")

COLUMNS = {
    "regions": {"区划编码": "code", "名称": "name", "层级": "level", "上级编码": "parent_code"},
    "organizations": {"组织编码": "code", "组织名称": "name", "类型": "kind", "上级组织编码": "parent_code",
                      "结对社区": "paired_community"},
    "members": {"姓名": "name", "手机号": "phone", "所在支部": "branch", "居住社区": "community", "网格": "grid"},
}
# Columns a file may leave out: a member's status change (domain/lifecycle), applied when the cell is filled.
OPTIONAL_COLUMNS = {
    "regions": {}, "organizations": {},
    "members": {"状态": "status", "状态生效日期": "status_on", "状态说明": "status_reason"},
}
ACTIVE = "active"
STATUS_WORDS = {"在册": ACTIVE, "正常": ACTIVE, "恢复": ACTIVE,
                **{name: code for code, name in DEACTIVATION_REASON_NAMES.items()}}

LEVEL_WORDS = {
    "市": RegionLevel.CITY,
    "区县": RegionLevel.DISTRICT, "区": RegionLevel.DISTRICT, "县": RegionLevel.DISTRICT,
    "街道": RegionLevel.STREET, "镇": RegionLevel.STREET, "乡": RegionLevel.STREET, "乡镇": RegionLevel.STREET,
    "社区": RegionLevel.COMMUNITY, "村": RegionLevel.COMMUNITY,
    "网格": RegionLevel.GRID,
    **{level.value: level for level in RegionLevel},
}
KIND_WORDS = {
    "部门党组织": OrgKind.DEPARTMENT, "党委": OrgKind.DEPARTMENT, "机关党委": OrgKind.DEPARTMENT,
    "党总支": OrgKind.DEPARTMENT,
    "党支部": OrgKind.BRANCH, "支部": OrgKind.BRANCH,
    **{kind.value: kind for kind in OrgKind},
}

CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,31}$")
SCIENTIFIC = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)
# Excel keeps 15 significant digits: a bigger whole number in a numeric cell has already been altered.
EXCEL_EXACT_LIMIT = 10**15
NUMBER_MANGLED = "超过 15 位的数字已被 Excel 改动，无法还原；请把该列设为文本格式后重新填写"
LENGTHS = {"name": 50, "region_name": 64, "org_name": 100, "reference": 100}


class UnreadableFile(ServiceError):
    status, code, message = 400, "file_unreadable", "无法读取上传的文件"


class UnsupportedFileType(ServiceError):
    status, code, message = 415, "unsupported_media_type", "仅支持 .xlsx 或 .csv 文件"


@dataclass(frozen=True)
class RowError:
    row: int
    message: str
    field: str | None = None

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class RegionRow:
    row: int
    code: str
    name: str
    level: RegionLevel
    parent_code: str


@dataclass(frozen=True)
class OrganizationRow:
    row: int
    code: str
    name: str
    kind: OrgKind
    parent_code: str
    paired_community: str


@dataclass(frozen=True)
class MemberRow:
    row: int
    name: str
    phone: str  # normalized; hashed and masked before it reaches the database
    branch: str
    community: str
    grid: str
    status: str | DeactivationReason | None = None  # ACTIVE, a deactivation reason, or None: leave as is
    status_on: date | None = None
    status_reason: str = ""


# ---- reading files -------------------------------------------------------------------------------------

def read_table(content: bytes, filename: str) -> list[tuple[int, list]]:
    """The first sheet's non-empty rows as (spreadsheet row number, raw cell values)."""
    if not content:
        raise UnreadableFile("上传的文件为空")
    suffix = PurePath(filename or "").suffix.lower()
    if suffix == ".xlsx":
        grid = _read_xlsx(content)
    elif suffix == ".csv":
        grid = _read_csv(content)
    else:
        raise UnsupportedFileType(f"仅支持 .xlsx 或 .csv 文件（收到“{suffix or '无扩展名'}”）")
    return [(number, cells) for number, cells in enumerate(grid, start=1) if any(_has_value(c) for c in cells)]


def _read_xlsx(content: bytes) -> list[list]:
    if reason := workbooks.too_large(content):
        raise UnreadableFile(reason)
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        # Without skip_empty_area the grid starts at A1, so list positions are the rows Excel shows.
        return workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except PasswordError as exc:
        raise UnreadableFile("文件已加密，请去掉密码后再上传") from exc
    except CalamineError as exc:
        raise UnreadableFile("无法读取 .xlsx 文件：文件已损坏或不是 Excel 2007 及以上格式") from exc


def _read_csv(content: bytes) -> list[list]:
    try:
        text = content.decode("utf-8-sig")  # with or without the BOM Excel writes
    except UnicodeDecodeError as exc:
        raise UnreadableFile("CSV 文件不是 UTF-8 编码：请在 Excel 中“另存为 → CSV UTF-8（逗号分隔）”") from exc
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UnreadableFile(f"CSV 文件格式有误：{exc}") from exc


def _has_value(value) -> bool:
    return value is not None and str(value).strip() != ""


def cell_text(value) -> str:
    """A cell as the text the user meant: 13800138000.0 from a numeric cell is "13800138000"."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value) or (value.is_integer() and abs(value) >= EXCEL_EXACT_LIMIT):
            raise ValueError(NUMBER_MANGLED)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def is_forbidden_char(char: str) -> bool:
    # Control (Cc), format incl. bidi overrides (Cf), surrogates and private use are refused;
    # characters outside the BMP (生僻字 such as 𠮷) and the middle dot · are kept exactly.
    return unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"}


# ---- one row's cells -----------------------------------------------------------------------------------

class RowCells:
    """One row's cells by column key, collecting every problem instead of stopping at the first."""

    def __init__(self, number: int, values: dict, headers: dict[str, str]) -> None:
        self.number, self.values, self.headers = number, values, headers
        self.errors: list[RowError] = []

    def fail(self, key: str, message: str) -> None:
        self.errors.append(RowError(self.number, message, self.headers[key]))

    def failed(self, key: str) -> bool:
        return any(error.field == self.headers[key] for error in self.errors)

    def text(self, key: str, *, required: bool = True, max_length: int = LENGTHS["reference"]) -> str:
        try:
            text = cell_text(self.values.get(key))
        except ValueError as exc:
            self.fail(key, str(exc))
            return ""
        if not text:
            if required:
                self.fail(key, "不能为空")
        elif any(is_forbidden_char(char) for char in text):
            self.fail(key, "包含不允许的控制字符或不可见字符")
        elif len(text) > max_length:
            self.fail(key, f"不能超过 {max_length} 个字符")
        else:
            return text
        return ""

    def code(self, key: str, *, required: bool = True) -> str:
        text = self.text(key, required=required)
        if text and SCIENTIFIC.match(text):
            self.fail(key, f"“{text}”是科学计数法，Excel 已丢失精度；请把该列设为文本格式后重新填写")
        elif text and not CODE.match(text):
            self.fail(key, "编码只能由字母、数字和 - _ . 组成，最长 32 位")
        else:
            return text
        return ""

    def phone(self, key: str) -> str:
        text = self.text(key, max_length=32)
        if not text:
            return ""
        try:
            return normalize_phone(text)
        except BadPhone as exc:
            self.fail(key, str(exc))
            return ""

    def day(self, key: str) -> date | None:
        """A required date: a date cell, or text such as 2026-11-01, within the years the service keys periods by."""
        value = self.values.get(key)
        if isinstance(value, datetime):
            value = value.date()
        if not isinstance(value, date):
            text = self.text(key)
            try:
                value = date.fromisoformat(text) if text else None
            except ValueError:
                self.fail(key, f"“{text}”不是日期，应如 2026-11-01")
                return None
        if value is not None and not within_years(value):
            self.fail(key, f"“{value.isoformat()}”{OUTSIDE_YEARS}")
            return None
        return value

    def choice(self, key: str, words: dict):
        text = self.text(key)
        if text and text not in words:
            self.fail(key, f"“{text}”不是可选值（可填：{'、'.join(w for w in words if not w.isascii())}）")
            return None
        return words.get(text)


def parse_region(cells: RowCells) -> RegionRow | None:
    code, name = cells.code("code"), cells.text("name", max_length=LENGTHS["region_name"])
    level, parent_code = cells.choice("level", LEVEL_WORDS), cells.code("parent_code", required=False)
    if level is RegionLevel.CITY and parent_code:
        cells.fail("parent_code", "市级区划不填上级编码")
    elif level not in (None, RegionLevel.CITY) and not parent_code and not cells.failed("parent_code"):
        cells.fail("parent_code", "除市级外必须填写上级编码")
    elif parent_code and parent_code == code:
        cells.fail("parent_code", "上级编码不能是自身")
    return None if cells.errors else RegionRow(cells.number, code, name, level, parent_code)


def parse_organization(cells: RowCells) -> OrganizationRow | None:
    code, name = cells.code("code"), cells.text("name", max_length=LENGTHS["org_name"])
    kind, parent_code = cells.choice("kind", KIND_WORDS), cells.code("parent_code", required=False)
    paired = cells.text("paired_community", required=False)
    if kind is OrgKind.DEPARTMENT and parent_code:
        cells.fail("parent_code", "部门党组织不填上级组织编码")
    if kind is OrgKind.BRANCH and not parent_code and not cells.failed("parent_code"):
        cells.fail("parent_code", "党支部必须填写上级组织编码（所属部门党组织）")
    if kind is OrgKind.BRANCH and paired:
        cells.fail("paired_community", "结对社区只对部门党组织填写")
    return None if cells.errors else OrganizationRow(cells.number, code, name, kind, parent_code, paired)


def parse_member(cells: RowCells) -> MemberRow | None:
    name, phone = cells.text("name", max_length=LENGTHS["name"]), cells.phone("phone")
    branch, community = cells.text("branch"), cells.text("community")
    grid = cells.text("grid", required=False)
    status = cells.choice("status", STATUS_WORDS) if cells.text("status", required=False) else None
    status_on = cells.day("status_on") if isinstance(status, DeactivationReason) else None
    status_reason = cells.text("status_reason", required=False, max_length=200)
    return None if cells.errors else MemberRow(cells.number, name, phone, branch, community, grid, status,
                                               status_on, status_reason)


ROW_PARSERS = {"regions": parse_region, "organizations": parse_organization, "members": parse_member}
UNIQUE_BY = {"regions": ("code", "区划编码"), "organizations": ("code", "组织编码"), "members": ("phone", "手机号")}


# ---- a whole sheet -------------------------------------------------------------------------------------

def parse_sheet(kind: str, table: list[tuple[int, list]], max_rows: int | None = None) -> tuple[list, list[RowError]]:
    """Every row of the sheet parsed; returns the valid rows and every error, in row order."""
    if not table:
        return [], [RowError(1, "文件没有内容：第 1 行应为表头")]
    (header_number, header), body = table[0], table[1:]
    positions, errors = locate_columns(kind, header_number, header)
    if errors:
        return [], errors
    if max_rows is not None and len(body) > max_rows:
        return [], [RowError(body[max_rows][0], f"超过单次导入上限 {max_rows} 行，请拆分文件后分批导入")]
    if not body:
        return [], [RowError(header_number + 1, "文件中没有数据行")]
    headers = {key: header for header, key in {**COLUMNS[kind], **OPTIONAL_COLUMNS[kind]}.items()}
    rows = []
    for number, cells in body:
        row_cells = RowCells(number, {key: cells[i] if i < len(cells) else None for key, i in positions.items()},
                             headers)
        row = ROW_PARSERS[kind](row_cells)
        errors.extend(row_cells.errors)
        if row is not None:
            rows.append(row)
    return rows, by_row(errors + _duplicates(kind, rows))


def by_row(errors: list[RowError]) -> list[RowError]:
    return sorted(errors, key=lambda error: error.row)


def locate_columns(kind: str, header_number: int, header: list) -> tuple[dict[str, int], list[RowError]]:
    """Column positions by key; every expected column must appear once (other columns are ignored)."""
    found: dict[str, list[int]] = {}
    for index, value in enumerate(header):
        text = str(value).strip() if value is not None else ""
        if text in COLUMNS[kind] or text in OPTIONAL_COLUMNS[kind]:
            found.setdefault(text, []).append(index)
    errors = []
    for name in (*COLUMNS[kind], *OPTIONAL_COLUMNS[kind]):
        if name not in found:
            if name in COLUMNS[kind]:
                errors.append(RowError(header_number, f"表头缺少列“{name}”", name))
        elif len(found[name]) > 1:
            errors.append(RowError(header_number, f"表头中列“{name}”出现了 {len(found[name])} 次", name))
    keys = {**COLUMNS[kind], **OPTIONAL_COLUMNS[kind]}
    return {keys[name]: found[name][0] for name in found}, errors


def _duplicates(kind: str, rows: list) -> list[RowError]:
    attribute, header = UNIQUE_BY[kind]
    first_seen: dict[str, int] = {}
    errors = []
    for row in rows:
        key = getattr(row, attribute)
        if key in first_seen:
            errors.append(RowError(row.row, f"{header}与第 {first_seen[key]} 行重复", header))
        else:
            first_seen[key] = row.row
    return errors
