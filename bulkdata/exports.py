"""Streaming CSV and XLSX writers, and the rows of the record and batch exports.

``stream_csv`` / ``csv_response`` and ``write_xlsx`` / ``xlsx_response`` take a header and any iterable of
rows, so other pages (the audit log) can reuse them. Neither holds the rows in memory: CSV is produced
line by line into a StreamingHttpResponse; XLSX goes through openpyxl's write-only workbook into a
temporary file that is streamed and then deleted.

Every text cell is guarded against formula injection (CWE-1236): a value starting with = + - @ (or a tab
or carriage return) gets a leading apostrophe, so a spreadsheet shows it as text and never runs it.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from institutions.models import User
from kwikid.fields import FIELDS
from records.masking import PII_FIELDS, mask_value
from records.models import KycRecord
from uploads.models import BatchItem

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_BATCH_ROWS = 2_000


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


# --- what is exported ---------------------------------------------------------------------------------

RECORD_HEADER: tuple[str, ...] = ("branch_code", *FIELDS, "status", "updated_at")


def record_rows(records: QuerySet[KycRecord], *, unmasked: bool) -> Iterator[list[Any]]:
    """One row per record in RECORD_HEADER's order (importable: the last two columns are ignored there).

    Reads in keyset-ordered batches, so memory stays flat whatever the number of records.
    """
    records = records.select_related("branch").order_by("pk")
    last = 0
    while True:
        batch = list(records.filter(pk__gt=last)[:EXPORT_BATCH_ROWS])
        if not batch:
            return
        for record in batch:
            row: list[Any] = [record.branch.code]
            for name in FIELDS:
                value = getattr(record, name)
                if not unmasked and name in PII_FIELDS:
                    value = mask_value(name, value)
                row.append(value)
            row += [record.status, record.updated_at]
            yield row
        last = batch[-1].pk


BATCH_HEADER: tuple[str, ...] = (
    "batch_id",
    "branch_code",
    "batch_status",
    "batch_created_at",
    "batch_finished_at",
    "attempts",
    "response_status_code",
    "response_status",
    "response_message",
    "error",
    "position",
    "kyc_ref_no",
    "record_outcome",
    "record_message",
)


def batch_rows(user: User) -> Iterator[list[Any]]:
    """One row per record in each of the user's branches' batches, with the batch's and KwikID's answer."""
    items = BatchItem.objects.select_related("batch__branch", "record").order_by("batch_id", "position")
    if not user.sees_all_branches:
        items = items.filter(batch__branch__in=user.branches.all())
    last = (0, 0)
    while True:
        batch = list(
            items.filter(batch_id__gte=last[0])
            .exclude(batch_id=last[0], position__lte=last[1])
            .only(
                "position",
                "outcome",
                "message",
                "record__kyc_ref_no",
                "batch__branch__code",
                "batch__status",
                "batch__created_at",
                "batch__finished_at",
                "batch__attempt_count",
                "batch__response_status_code",
                "batch__response_status",
                "batch__response_message",
                "batch__error",
            )[:EXPORT_BATCH_ROWS]
        )
        if not batch:
            return
        for item in batch:
            b = item.batch
            yield [
                b.pk,
                b.branch.code,
                b.status,
                b.created_at,
                b.finished_at,
                b.attempt_count,
                b.response_status_code,
                b.response_status,
                b.response_message,
                b.error,
                item.position,
                item.record.kyc_ref_no,
                item.outcome,
                item.message,
            ]
        last = (batch[-1].batch_id, batch[-1].position)
