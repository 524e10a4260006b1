"""The writer: an imported record, its events and its name tokens are what the single-record services
write, whether by COPY (PostgreSQL) or by bulk_create; COPY's text format escapes what it must."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection

from bulkdata.copy import copy_text
from bulkdata.engine import records_import
from institutions.models import Branch, User
from records import services as record_services
from records.models import KycRecord, RecordEvent, RecordNameToken
from tests.bulkdata.helpers import csv_bytes, rows
from tests.records.factories import differently_abled_record, minimal_record, valid_record

pytestmark = pytest.mark.django_db

# Set by the database or the clock, so they differ between any two records.
VOLATILE = {"id", "kyc_ref_no", "created_at", "updated_at", "submitted_at"}


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


def stored(record: KycRecord) -> dict[str, Any]:
    record.refresh_from_db()
    return {
        f.attname: getattr(record, f.attname)
        for f in KycRecord._meta.concrete_fields
        if f.name not in VOLATILE
    }


def history(record: KycRecord) -> list[tuple[Any, ...]]:
    return list(
        RecordEvent.objects.filter(record=record)
        .order_by("created_at", "pk")
        .values_list("action", "from_status", "to_status", "actor_id", "reason")
    )


def tokens(record: KycRecord) -> set[str]:
    return set(RecordNameToken.objects.filter(record=record).values_list("token_hash", flat=True))


@pytest.mark.parametrize("make", [valid_record, minimal_record, differently_abled_record])
@pytest.mark.parametrize("submit", [False, True])
def test_imported_record_equals_one_entered_through_the_services(
    make: Callable[[], dict[str, Any]], submit: bool, alice: User, branch_a: Branch
) -> None:
    data = make()
    data["kyc_ref_no"] = "FORM-1"
    by_form = record_services.record_create(actor=alice, branch=branch_a, data=data)
    if submit:
        by_form = record_services.record_submit(actor=alice, record=by_form)
    data["kyc_ref_no"] = "FILE-1"
    # Messy as spreadsheets are: lower case, spaces, a single-digit code, "+91".
    messy = {**data, "pan": f" {data['pan'].lower()} ", "applicant_first_name": "  ravi ", "kyc_type": "1"}
    messy["mobile_isd"] = "+91" if data["mobile_isd"] else ""
    outcome = records_import(
        actor=alice, branch=branch_a, opener=opener(csv_bytes([messy])), save=True, submit=submit
    )
    assert outcome.created == 1
    by_file = KycRecord.objects.get(kyc_ref_no="FILE-1")
    assert stored(by_file) == stored(by_form)
    assert history(by_file) == history(by_form)
    assert tokens(by_file) == tokens(by_form)
    assert by_file.pan == data["pan"]  # decrypts: the COPY path encrypted with the field's own keys


def test_orm_path_writes_the_same_as_copy(
    alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    records_import(
        actor=alice, branch=branch_a, opener=opener(csv_bytes(rows(1, "COPY"))), save=True, submit=True
    )
    monkeypatch.setattr(connection, "vendor", "other")  # what SQLite (make run) takes: bulk_create
    records_import(
        actor=alice, branch=branch_a, opener=opener(csv_bytes(rows(1, "ORM"))), save=True, submit=True
    )
    copied, created = (
        KycRecord.objects.get(kyc_ref_no="COPY-00001"),
        KycRecord.objects.get(kyc_ref_no="ORM-00001"),
    )
    assert stored(copied) == stored(created)
    assert history(copied) == history(created)
    assert tokens(copied) == tokens(created)


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (None, "\\N"),
        ("plain", "plain"),
        ("R\\K\tSHARMA\r\n", "R\\\\K\\tSHARMA\\r\\n"),
        ("\x08\x0b\x0c", "\\b\\v\\f"),
        (True, "t"),
        (False, "f"),
        (date(2024, 2, 29), "2024-02-29"),
        (datetime(2024, 2, 29, 10, 30, tzinfo=UTC), "2024-02-29T10:30:00+00:00"),
        (42, "42"),
    ],
    ids=["null", "plain", "escapes", "control", "true", "false", "date", "aware-datetime", "number"],
)
def test_copy_text_writes_values_as_copys_text_format_reads_them(value: Any, line: str) -> None:
    assert copy_text(value) == line
