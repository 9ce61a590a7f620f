"""Building roster files in memory for tests: CSV (with or without BOM) and XLSX (cells typed as given)."""

from __future__ import annotations

import csv
import io
import zipfile

import xlsxwriter

HEADERS = {
    "regions": ["区划编码", "名称", "层级", "上级编码"],
    "organizations": ["组织编码", "组织名称", "类型", "上级组织编码", "结对社区"],
    "members": ["姓名", "手机号", "所在支部", "居住社区", "网格"],
}


def csv_bytes(kind: str, *rows: list, bom: bool = False, header: list | None = None) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header or HEADERS[kind])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def xlsx_bytes(kind: str, *rows: list, first_row: int = 0, cells: dict | None = None) -> bytes:
    """An .xlsx whose cells keep their Python types: an int phone becomes a numeric cell, as typed in Excel.
    ``cells`` adds text-formatted values at (row, column) positions, counted from 0."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet()
    for offset, row in enumerate([HEADERS[kind], *rows]):
        for column, value in enumerate(row):
            if value is not None:
                sheet.write(first_row + offset, column, value)
    text = workbook.add_format({"num_format": "@"})
    for (row, column), value in (cells or {}).items():
        sheet.write(row, column, value, text)  # text-formatted, as in the template: "" is a styled empty cell
    workbook.close()
    return buffer.getvalue()


def with_part(content: bytes, name: str, data: bytes) -> bytes:
    """The .xlsx ``content`` with one more part (a file inside its zip), deflated as Excel does."""
    buffer = io.BytesIO(content)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()
