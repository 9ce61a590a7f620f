"""Sending an annual export as a file download: shared by the API and the console, so both stream the same
bytes the same way (CSV generated chunk by chunk; XLSX written in constant memory to a temporary file that is
unlinked at once and streamed from disk)."""

from __future__ import annotations

import os
import tempfile

from flask import Response, send_file, stream_with_context

from points_service.domain.exports import annual as rows
from points_service.domain.exports.files import csv_chunks, file_name, write_xlsx

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def send_annual_export(export: rows.AnnualExport, fmt: str) -> Response:
    """``fmt`` is ``csv`` or ``xlsx``; the caller has authorized and audited the export."""
    name = file_name(export.settlement.year, export.subject, fmt)
    if fmt == "csv":
        return Response(stream_with_context(csv_chunks(rows.annual_rows(export))), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        write_xlsx(rows.annual_rows(export), path)
        stream = open(path, "rb")  # noqa: SIM115 (send_file closes it when the response ends)
    finally:
        os.unlink(path)
    return send_file(stream, mimetype=XLSX_MIME, as_attachment=True, download_name=name)
