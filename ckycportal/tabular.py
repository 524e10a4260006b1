"""Streaming CSV and XLSX writers for any table: a header and an iterable of rows.

``stream_csv`` / ``csv_response`` and ``write_xlsx`` / ``xlsx_response`` hold no rows in memory: CSV is
produced line by line into a StreamingHttpResponse; XLSX goes through openpyxl's write-only workbook into a
temporary file that is streamed and then deleted. They live in the bottom layer so that every app's pages
(the record and batch exports, the audit log, the reconciliation page) write files the same way.

Every text cell is guarded against formula injection (CWE-1236): a value starting with = + - @ (or a tab
or carriage return) gets a leading apostrophe, so a spreadsheet shows it as text and never runs it.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet must show it: text that would start a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat(timespec="seconds")
            if timezone.is_aware(value)
            else str(value)
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Echo:
    """A file-like object whose write returns what it was given (csv.writer -> one line of text)."""

    def write(self, value: str) -> str:
        return value


def stream_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV lines (UTF-8 with a byte order mark, so Excel reads it as UTF-8), formula-safe."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + str(writer.writerow([safe_cell(h) for h in header]))
    for row in rows:
        yield str(writer.writerow([safe_cell(_text(value)) for value in row]))


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream_csv(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, bool):
        return "Y" if value else "N"
    if value is None:
        return ""
    return safe_cell(value)


def write_xlsx(
    target: Any, header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "Export"
) -> None:
    """A one-sheet workbook written row by row (openpyxl write-only) into ``target`` (path or binary file)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append([safe_cell(h) for h in header])
    for row in rows:
        sheet.append([_xlsx_value(value) for value in row])
    workbook.save(target)


def xlsx_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "Export"
) -> FileResponse:
    # The temporary file is deleted when the response closes it (FileResponse closes its file).
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    write_xlsx(spool, header, rows, title=title)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=filename,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
