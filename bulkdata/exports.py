"""The rows of the record and batch exports, written by ckycportal.tabular's streaming CSV and XLSX writers
(imported here under their names, which other pages use)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from ckycportal.tabular import (
    FORMULA_START,
    csv_response,
    safe_cell,
    stream_csv,
    write_xlsx,
    xlsx_response,
)
from institutions.models import User
from kwikid.fields import FIELDS
from records.masking import PII_FIELDS, mask_value
from records.models import KycRecord
from uploads.models import BatchItem

__all__ = [
    "BATCH_HEADER",
    "EXPORT_BATCH_ROWS",
    "FORMULA_START",
    "RECORD_HEADER",
    "batch_rows",
    "csv_response",
    "record_rows",
    "safe_cell",
    "stream_csv",
    "write_xlsx",
    "xlsx_response",
]

EXPORT_BATCH_ROWS = 2_000


# --- what is exported ---------------------------------------------------------------------------------

# After the fields, what the portal knows of the record (an import ignores these columns): its status, and
# the registry's KIN with the days KwikID accepted the record and the portal found it registered.
RECORD_HEADER: tuple[str, ...] = (
    "branch_code",
    *FIELDS,
    "status",
    "updated_at",
    "ckyc_number",
    "accepted_on",
    "registered_on",
)


def _local_day(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None


def record_rows(records: QuerySet[KycRecord], *, unmasked: bool) -> Iterator[list[Any]]:
    """One row per record in RECORD_HEADER's order (importable: the columns after the fields are ignored
    there). The KIN is masked like the other identifiers unless ``unmasked``.

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
            kin = record.ckyc_number if unmasked else record.masked_kin
            row += [
                record.status,
                record.updated_at,
                kin,
                _local_day(record.uploaded_at),
                _local_day(record.registered_at),
            ]
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
