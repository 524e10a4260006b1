"""Import files for the tests: records as CSV, XLSX or JSON bytes, as people (and KwikID) write them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from bulkdata.models import ImportJob
from kwikid.fields import FIELDS
from kwikid.payload import record_to_payload
from records.models import KycRecord
from tests.records.factories import valid_record


def rows(n: int, prefix: str = "IMP", **overrides: Any) -> list[dict[str, Any]]:
    """n valid records with distinct reference numbers, PANs and mobiles."""
    result = []
    for i in range(1, n + 1):
        data = valid_record()
        data.update(
            kyc_ref_no=f"{prefix}-{i:05d}",
            pan=f"ABCP{chr(65 + i % 26)}{i % 10_000:04d}F",
            mobile_number=f"98765{i % 100_000:05d}",
        )
        data.update(overrides)
        result.append(data)
    return result


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_bytes(
    records: Iterable[dict[str, Any]], columns: Iterable[str] = FIELDS, *, bom: bool = False
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(columns)
    writer.writerow(columns)
    for record in records:
        writer.writerow([cell(record.get(name)) for name in columns])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def xlsx_bytes(
    records: Iterable[dict[str, Any]], columns: Iterable[str] = FIELDS, *, sheets: int = 1
) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    columns = list(columns)
    sheet.append(columns)
    for record in records:
        sheet.append(
            [
                record.get(name) if not isinstance(record.get(name), bool) else cell(record.get(name))
                for name in columns
            ]
        )
    for i in range(1, sheets):
        workbook.create_sheet(f"Other {i}")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def json_body(records: Iterable[dict[str, Any]], *, wrapped: bool = True) -> bytes:
    payload = [record_to_payload(record) for record in records]
    if wrapped:
        body: Any = {
            "fi_code": "TEST01",
            "version": "V1.3",
            "region_code": "MH",
            "username": "U",
            "branch_code": "BRA",
            "records": payload,
        }
    else:
        body = payload
    return json.dumps(body, default=lambda d: d.isoformat()).encode()


def job_for(record: KycRecord) -> ImportJob:
    """An import job of the record's maker at the record's branch (for the access matrix)."""
    return ImportJob.objects.create(
        branch=record.branch, created_by=record.created_by, filename="x.csv", file_format="csv"
    )
