"""The import engine: every format, duplicates in the file and in the database, branches, all or nothing,
and the checks that keep the single-record services' refusals."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from bulkdata import engine
from bulkdata.engine import ImportRejected, records_import
from ckycportal.errors import PortalError
from institutions.models import Branch, User
from records import services as record_services
from records.models import KycRecord, RecordEvent
from tests.bulkdata.helpers import csv_bytes, json_body, rows, xlsx_bytes
from tests.records.factories import valid_record

pytestmark = pytest.mark.django_db


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


@pytest.mark.parametrize(
    "data",
    [
        lambda: xlsx_bytes(rows(3)),
        lambda: json_body(rows(3)),
        lambda: json_body(rows(3), wrapped=False),
        lambda: csv_bytes(rows(3), bom=True),
    ],
    ids=["xlsx", "json-body", "json-array", "csv-bom"],
)
def test_every_format_imports(data: Callable[[], bytes], alice: User, branch_a: Branch) -> None:
    outcome = records_import(actor=alice, branch=branch_a, opener=opener(data()), save=True)
    assert (outcome.rows, outcome.invalid, outcome.created) == (3, 0, 3)
    record = KycRecord.objects.get(kyc_ref_no="IMP-00002")
    assert record_services.record_data(record) == {**rows(3)[1]}


def test_duplicates_in_the_file_and_in_the_database_are_reported_per_row(
    alice: User, branch_a: Branch
) -> None:
    existing = valid_record()
    existing.update(kyc_ref_no="OLD-1", pan="ZZZPZ9999Z")
    record_services.record_create(actor=alice, branch=branch_a, data=existing)
    records = rows(4)
    records[1]["kyc_ref_no"] = "imp-00001"  # repeats row 2, ignoring case
    records[2]["kyc_ref_no"] = "old-1"  # already in the database
    records[3]["pan"] = records[0]["pan"]  # same PAN as row 2: a warning
    records[0]["pan"] = "ZZZPZ9999Z"  # same PAN as OLD-1: a warning naming it (same branch)
    records[3]["pan"] = "ZZZPZ9999Z"
    found: dict[int, list[tuple[str, str, str]]] = {}
    outcome = records_import(
        actor=alice,
        branch=branch_a,
        opener=opener(csv_bytes(records)),
        save=False,
        on_problems=lambda row, problems: found.setdefault(row, []).extend(
            (p.field, p.severity, p.message) for p in problems
        ),
    )
    assert found[3] == [("kyc_ref_no", "error", "KYC reference number repeats row 2 of this file")]
    assert found[4][0][:2] == ("kyc_ref_no", "error")
    assert "Another record already has this KYC reference number" in found[4][0][2]
    assert (
        "pan",
        "warning",
        "Same PAN as row 2 of this file: check that this is not the same customer twice",
    ) in (found[5])
    assert any("Another record (OLD-1) has the same PAN" in message for _, _, message in found[2])
    assert (outcome.invalid, outcome.valid) == (2, 2)


def test_another_branchs_record_is_not_named_in_a_pan_warning(
    alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    secret = valid_record()
    secret.update(kyc_ref_no="SECRET-B", pan="ZZZPZ9999Z")
    record_services.record_create(actor=mallory, branch=branch_b, data=secret)
    messages: list[str] = []
    records_import(
        actor=alice,
        branch=branch_a,
        opener=opener(csv_bytes(rows(1, pan="ZZZPZ9999Z"))),
        save=False,
        on_problems=lambda row, problems: messages.extend(p.message for p in problems),
    )
    # Neither the record nor its branch: only that it exists somewhere in the institution.
    assert messages == [
        "A record elsewhere in the institution has the same PAN: check that this is not the same "
        "customer twice"
    ]
    assert "SECRET-B" not in messages[0] and branch_b.code not in messages[0]


def test_warnings_block_when_the_institution_says_so(alice: User, branch_a: Branch) -> None:
    branch_a.institution.warnings_block = True
    branch_a.institution.save()
    records = rows(2)
    records[1]["pan"] = records[0]["pan"]
    with pytest.raises(ImportRejected):
        records_import(actor=alice, branch=branch_a, opener=opener(csv_bytes(records)), save=True)
    assert not KycRecord.objects.exists()


def test_all_or_nothing_rolls_back_rows_written_before_the_bad_one(
    alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "CHUNK_ROWS", 2)  # the first chunks are written before row 6 is read
    records = rows(6)
    records[4]["gender"] = "X"
    with pytest.raises(ImportRejected) as info:
        records_import(actor=alice, branch=branch_a, opener=opener(csv_bytes(records)), save=True)
    assert (info.value.outcome.rows, info.value.outcome.invalid) == (6, 1)
    assert not KycRecord.objects.exists()
    assert not RecordEvent.objects.exists()


def test_branch_code_column_routes_rows_to_the_makers_other_branch(
    alice: User, branch_a: Branch, branch_b: Branch
) -> None:
    alice.branches.add(branch_b)
    records = rows(3)
    records[1]["branch_code"] = "brb"
    records[2]["branch_code"] = "ELSEWHERE"
    found: dict[int, list[str]] = {}
    outcome = records_import(
        actor=alice,
        branch=branch_a,
        opener=opener(csv_bytes(records, [*records[0].keys(), "branch_code"])),
        save=True,
        only_valid=True,
        on_problems=lambda row, problems: found.setdefault(row, []).extend(p.message for p in problems),
    )
    assert outcome.created == 2
    assert KycRecord.objects.get(kyc_ref_no="IMP-00002").branch == branch_b
    assert found[4][0].startswith("You do not work at branch ELSEWHERE")


def test_full_aadhaar_anywhere_in_a_row_is_refused(alice: User, branch_a: Branch) -> None:
    records = rows(1, poa_address_line_1="Aadhaar 2345 6789 0124, Marine Drive")
    found: list[tuple[str, str]] = []
    outcome = records_import(
        actor=alice,
        branch=branch_a,
        opener=opener(csv_bytes(records)),
        save=False,
        on_problems=lambda row, problems: found.extend((p.field, p.message) for p in problems),
    )
    assert outcome.invalid == 1
    assert found[0][0] == "poa_address_line_1"
    assert "full Aadhaar number must never be stored" in found[0][1]


def test_first_rows_table_remembers_every_key_through_growth() -> None:
    table = engine._FirstRows(capacity=4)
    for n in range(1, 5001):
        assert table.first(n * 7919, n + 1) == n + 1
    assert [table.first(n * 7919, 99) for n in (1, 2500, 5000)] == [2, 2501, 5001]
    assert table.first(0, 7) == 7  # 0 is a key like any other (stored as 1)


def test_a_record_saved_between_the_check_and_the_copy_fails_the_import_cleanly(
    alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish = engine._Scan.finish

    def finish_then_someone_saves(self: Any, chunk: Any) -> Any:
        checked = finish(self, chunk)
        data = valid_record()
        data["kyc_ref_no"] = "imp-00002"  # slips in after the duplicate check
        record_services.record_create(actor=alice, branch=branch_a, data=data)
        return checked

    monkeypatch.setattr(engine._Scan, "finish", finish_then_someone_saves)
    with pytest.raises(engine.ImportConflict, match="nothing was imported"):
        records_import(actor=alice, branch=branch_a, opener=opener(csv_bytes(rows(3))), save=True)
    assert not KycRecord.objects.filter(kyc_ref_no__startswith="IMP").exists()


def test_duplicate_checks_probe_the_pan_index_while_the_import_fills_the_table(
    alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans: list[str] = []
    same_pans = engine._same_pans

    def explain_then_look(hashes: list[str]) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + engine._record_sql(engine._SAME_PANS), [hashes])
            plans.append("\n".join(line for (line,) in cursor.fetchall()))
        return same_pans(hashes)

    monkeypatch.setattr(engine, "CHUNK_ROWS", 300)
    monkeypatch.setattr(engine, "_same_pans", explain_then_look)
    # The table has no statistics: 300 hashes look like all of it to the planner.
    records_import(actor=alice, branch=branch_a, opener=opener(csv_bytes(rows(600))), save=True)
    assert len(plans) == 2
    assert all("record_pan_hash" in plan and "Seq Scan" not in plan for plan in plans), plans
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"  # only while the rows were checked


def test_a_rejected_import_is_a_portal_error_that_says_what_to_do(alice: User, branch_a: Branch) -> None:
    records = rows(3)
    records[1]["gender"] = "X"
    with pytest.raises(PortalError) as info:
        records_import(actor=alice, branch=branch_a, opener=opener(csv_bytes(records)), save=True)
    assert isinstance(info.value, ImportRejected)
    assert info.value.message == (
        "1 of 3 rows are invalid; nothing was imported. Fix them, or import only the valid rows."
    )
    assert str(info.value) == info.value.message
