"""How large an .xlsx really is, checked before it is read.

python-calamine lays the first sheet out as a whole grid, from A1 to its farthest cell with a value, and an .xlsx
is a zip: a few kilobytes with one value in XFD1048576 would have it allocate hundreds of gigabytes (and abort
the worker), and millions of rows deflate into a small upload. So the parts' unpacked size, as the zip's
directory declares it (the reader refuses a part larger than declared), and each sheet's grid are bounded first.
A file that is no zip at all is left to the reader, which names what is wrong with it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from io import BytesIO
from xml.parsers import expat

MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # a 5,000-row roster unpacks to a few MB
MAX_CELLS = 500_000  # 5,001 rows × 100 columns
CELL_REF = re.compile(r"([A-Za-z]{1,3})([0-9]{1,7})")
ROW_NUMBER = re.compile(r"[0-9]{1,7}")
CHUNK = 1024 * 1024


def too_large(content: bytes) -> str | None:
    """Why the workbook is too large to read, or None."""
    try:
        with zipfile.ZipFile(BytesIO(content)) as archive:
            parts = archive.infolist()
            if sum(part.file_size for part in parts) > MAX_UNPACKED_BYTES:
                return f"文件解压后超过 {MAX_UNPACKED_BYTES // 1024 // 1024} MB：请只保留要导入的工作表后重新上传"
            if any(part.filename.endswith(".xml") and _grid_cells(archive, part) > MAX_CELLS for part in parts):
                return (f"工作表的数据区域超过 {MAX_CELLS:,} 个单元格：请删除数据以外误填的单元格"
                        "（如远处的行或列），或拆分文件后分批导入")
    except zipfile.BadZipFile:
        return None
    except (NotImplementedError, RuntimeError, EOFError, OSError, zlib.error):  # a part we cannot unpack
        return "无法读取 .xlsx 文件：文件已损坏或不是 Excel 2007 及以上格式"
    return None


class _Extent:
    """Rows × columns from A1 to the farthest cell with a value, counted as the reader places cells: a row or a
    cell without its reference follows the one before it."""

    def __init__(self) -> None:
        self.row = self.column = -1
        self.rows = self.columns = 0
        self.open_cell = False

    def start(self, name: str, attributes: dict) -> None:
        local = name.rpartition(":")[2]
        if local == "row":
            number = attributes.get("r", "")
            self.row = int(number) - 1 if ROW_NUMBER.fullmatch(number) else self.row + 1
            self.column = -1
        elif local == "c":
            self.open_cell = True
            reference = CELL_REF.fullmatch(attributes.get("r", ""))
            if reference is None:
                self.column += 1
            else:
                self.column, self.row = _column_index(reference[1]), int(reference[2]) - 1
        elif local in ("v", "is") and self.open_cell:
            self.rows, self.columns = max(self.rows, self.row + 1), max(self.columns, self.column + 1)

    def end(self, name: str) -> None:
        if name.rpartition(":")[2] == "c":
            self.open_cell = False


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _grid_cells(archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> int:
    """The size of the grid a part that is a sheet lays out (0 for other parts and for XML the reader refuses)."""
    extent, parser = _Extent(), expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = extent.start, extent.end
    try:
        with archive.open(part) as stream:
            while chunk := stream.read(CHUNK):
                parser.Parse(chunk, False)
                if extent.rows * extent.columns > MAX_CELLS:
                    break
    except expat.ExpatError:
        pass
    return extent.rows * extent.columns
