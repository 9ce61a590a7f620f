"""CSV and XLSX writers over ``annual_rows``: neither ever holds the whole file's rows in memory.

CSV is UTF-8 with a BOM (so Excel on Windows reads the Chinese headers) and produced as byte chunks
a response can stream. XLSX is written by XlsxWriter in constant_memory mode (each row is flushed to
disk as soon as the next starts) to a file, which the API then sends and the job keeps.

A file written to a path (the command's ``--out``, the job's files) appears there only when complete:
``atomic_path`` writes a temporary file in the same folder and renames it into place (``os.replace``), and
removes it when the writing fails, so a failure partway never leaves a half-written file that looks like an export
(nor replaces an earlier one).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import xlsxwriter
from flask import current_app

from points_service.domain.annual.settlement import SYSTEM, settlement_of
from points_service.domain.exports.annual import (
    ANNUAL_COLUMNS,
    HEADERS,
    AnnualRow,
    annual_rows,
    record_export,
    system_export,
    to_cells,
)
from points_service.models import SubjectType

BOM = "\ufeff".encode()
ROWS_PER_CHUNK = 500
FORMATS = ("csv", "xlsx")


def _csv_text(cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Decimal):
        return f"{cell:.2f}"
    return str(cell)


def csv_chunks(rows: Iterable[AnnualRow]) -> Iterator[bytes]:
    """The CSV file as byte chunks: the BOM and header first, then ``ROWS_PER_CHUNK`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    yield BOM + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for index, row in enumerate(rows, start=1):
        writer.writerow([_csv_text(cell) for cell in to_cells(row)])
        if index % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def write_csv(rows: Iterable[AnnualRow], stream: BinaryIO) -> int:
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    for chunk in csv_chunks(counted()):
        stream.write(chunk)
    return count


def write_xlsx(rows: Iterable[AnnualRow], path: str | Path, *, sheet_name: str = "年度积分") -> int:
    """Write an .xlsx at ``path``: Chinese headers, frozen header row, identifiers as text, numbers as
    numbers (0.00), guarded text. Returns the number of data rows."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                               "strings_to_formulas": False, "strings_to_urls": False})
    try:
        sheet = workbook.add_worksheet(sheet_name)
        header = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
        formats = {"points": workbook.add_format({"num_format": "0.00"}),
                   "int": workbook.add_format({"num_format": "0"}),
                   "text": workbook.add_format({"num_format": "@"})}
        for index, column in enumerate(ANNUAL_COLUMNS):
            sheet.set_column(index, index, column.width)
            sheet.write_string(0, index, column.header, header)
        sheet.freeze_panes(1, 0)
        writers = [(sheet.write_string if column.kind == "text" else sheet.write_number, formats[column.kind])
                   for column in ANNUAL_COLUMNS]
        count = 0
        for count, row in enumerate(rows, start=1):
            for index, ((write, cell_format), cell) in enumerate(zip(writers, to_cells(row), strict=True)):
                if cell is None or cell == "":
                    continue  # an empty cell: nothing to write
                write(count, index, float(cell) if isinstance(cell, Decimal) else cell, cell_format)
    finally:
        workbook.close()
    return count


def export_dir() -> Path:
    """Where the annual job writes its files: ``EXPORT_DIR`` if configured, else ``instance/exports``."""
    directory = Path(current_app.config.get("EXPORT_DIR") or Path(current_app.instance_path) / "exports")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def file_name(year: int, subject: SubjectType, fmt: str) -> str:
    return f"annual-{year}-{subject}.{fmt}"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write the whole file to; renamed to ``path`` when the block ends
    normally, removed when it raises. The temporary file is created exclusively (with the umask's mode, like
    ``open``) and hidden (``.name.….tmp``), so nothing takes it for an export."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    with open(temporary, "xb"):
        pass
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_export_file(year: int, subject: SubjectType, fmt: str, path: str | Path, *, via: str) -> int:
    """Write the whole city's rows of one subject to ``path`` and audit it (flush only; callers commit).
    The file appears at ``path`` only once complete (``atomic_path``); nothing is left there when it fails."""
    export = system_export(year, subject)
    with atomic_path(path) as temporary:
        if fmt == "csv":
            with open(temporary, "wb") as stream:
                count = write_csv(annual_rows(export), stream)
        else:
            count = write_xlsx(annual_rows(export), temporary)
        record_export(SYSTEM, export, fmt, count, via=via, commit=False)
    return count


def annual_export_job(period, _policy) -> dict:
    """The ``annual_export`` job: the settled year's CSV and XLSX files for members and organizations.
    Fails (and is retried at the next run) while the year is not settled yet."""
    year = int(period.key)
    if settlement_of(year) is None:
        raise RuntimeError(f"{year} 年度尚未结算，暂不导出")
    directory, written = export_dir(), {}
    for subject in (SubjectType.MEMBER, SubjectType.ORGANIZATION):
        for fmt in FORMATS:
            name = file_name(year, subject, fmt)
            written[name] = write_export_file(year, subject, fmt, directory / name, via="job")
    return {"directory": str(directory), "files": written}
