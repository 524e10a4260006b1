"""Files as people make them: optional columns left out, control characters in a cell.

Optional columns (bulkdata.parsers.OPTIONAL_COLUMNS) may be absent and read as blank; required and unknown
columns are still refused by name. A control character in a cell is a problem of its row and column, and
the file is still all or nothing; a file that really is binary is refused as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from bulkdata.engine import ImportRejected, records_import
from bulkdata.parsers import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, FileRefused, read_rows
from bulkdata.rows import check_record, clean
from institutions.models import Branch, User
from kwikid.fields import CURRENT_ADDRESS_FIELDS, DISABILITY_FIELDS, FIELDS
from records.models import KycRecord
from tests.bulkdata.helpers import csv_bytes, rows, xlsx_bytes
from tests.records.factories import minimal_record, valid_record

ONLY_REQUIRED = list(REQUIRED_COLUMNS)
WITHOUT_CURRENT_AND_DISABILITY = [
    name
    for name in FIELDS
    if name not in CURRENT_ADDRESS_FIELDS
    and name not in DISABILITY_FIELDS
    and name != "differently_abled_flag"
]
# What a current address that is not the proof of address needs (its PIN code only once its country is IN).
CURRENT_REQUIRED = {"current_address_line_1", "current_vtc", "current_state", "current_country"}
FORMATS: dict[str, Callable[..., bytes]] = {"csv": csv_bytes, "xlsx": xlsx_bytes}


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


def errors_of(data: dict[str, Any]) -> set[str]:
    cleaned, _ = clean(data)
    return {p.field for p in check_record(cleaned, today=date(2026, 11, 30), codes=None) if p.is_error}


# --- which columns are optional, held to the CKYC rules ----------------------------------------------


def test_a_record_with_every_optional_column_blank_passes_the_rules() -> None:
    record = minimal_record() | dict.fromkeys(OPTIONAL_COLUMNS & set(FIELDS), "")
    assert errors_of(record) == set()


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_a_required_column_left_blank_is_an_error_of_its_field(column: str) -> None:
    record = valid_record() | {column: None if column in ("dob",) or column.endswith("_date") else ""}
    assert column in errors_of(record)


def test_the_conditionally_required_optional_columns_are_required_when_their_flag_says_so() -> None:
    record = valid_record() | dict.fromkeys(CURRENT_ADDRESS_FIELDS, "")  # current address "N"
    assert errors_of(record) >= CURRENT_REQUIRED
    disabled = valid_record() | {"differently_abled_flag": True}
    assert {"impairment_type", "impairment_percentage"} <= errors_of(disabled)


# --- files lacking optional columns --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize(
    "columns",
    [WITHOUT_CURRENT_AND_DISABILITY, ONLY_REQUIRED],
    ids=["no-current-no-disability", "required-only"],
)
def test_a_file_without_optional_columns_imports_them_as_blank(
    kind: str, columns: list[str], alice: User, branch_a: Branch
) -> None:
    records = rows(3, current_address_same_as_poa_address="Y")
    data = FORMATS[kind](records, columns)
    outcome = records_import(actor=alice, branch=branch_a, opener=opener(data), save=True)
    assert (outcome.rows, outcome.invalid, outcome.created) == (3, 0, 3)
    record = KycRecord.objects.get(kyc_ref_no="IMP-00002")
    assert record.current_address_same_as_poa_address == "Y"
    assert record.current_address_line_1 == ""
    assert record.differently_abled_flag is False
    assert record.impairment_type == "" and record.udid_number == ""
    if columns is ONLY_REQUIRED:
        assert record.applicant_middle_name == "" and record.mobile_number == ""


@pytest.mark.django_db
@pytest.mark.parametrize("kind", FORMATS)
def test_a_row_that_needs_a_missing_optional_column_names_the_field_on_its_row(
    kind: str, alice: User, branch_a: Branch
) -> None:
    records = rows(2, current_address_same_as_poa_address="Y")
    records[1]["current_address_same_as_poa_address"] = "N"
    found: dict[int, set[str]] = {}
    data = FORMATS[kind](records, WITHOUT_CURRENT_AND_DISABILITY)
    with pytest.raises(ImportRejected):
        records_import(
            actor=alice,
            branch=branch_a,
            opener=opener(data),
            save=True,
            on_problems=lambda row, problems: found.setdefault(row, set()).update(
                p.field for p in problems if p.is_error
            ),
        )
    assert found == {3: CURRENT_REQUIRED}
    assert not KycRecord.objects.exists()


@pytest.mark.parametrize("kind", FORMATS)
def test_a_missing_required_column_and_an_unknown_column_are_refused_by_name(kind: str) -> None:
    columns = [name for name in FIELDS if name not in ("pan", "poa_vtc")] + ["shoe_size"]
    with pytest.raises(FileRefused) as info:
        list(read_rows(opener(FORMATS[kind](rows(1), columns)), f"f.{kind}"))
    message = str(info.value)
    assert "missing required columns: pan, poa_vtc" in message
    assert "unknown columns: shoe_size" in message
    assert "current_address_line_1" not in message


# --- control characters in a cell ----------------------------------------------------------------------


def _problems(data: bytes, name: str, alice: User, branch: Branch) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    with pytest.raises(ImportRejected) as info:
        records_import(
            actor=alice,
            branch=branch,
            opener=opener(data),
            filename=name,
            save=True,
            on_problems=lambda row, problems: found.setdefault(row, []).extend(
                (p.field, p.message) for p in problems if p.is_error
            ),
        )
    assert (info.value.outcome.rows, info.value.outcome.invalid) == (3, 2)
    return found


@pytest.mark.django_db
def test_a_nul_and_a_bel_in_csv_cells_are_problems_of_their_rows_and_columns(
    alice: User, branch_a: Branch
) -> None:
    records = rows(3)
    records[0]["poa_vtc"] = "Mum\x00bai"
    records[2]["applicant_first_name"] = "RA\x07VI"
    records[2]["dob"] = "1985-04-12\x07"
    found = _problems(csv_bytes(records), "f.csv", alice, branch_a)
    assert found == {
        2: [("poa_vtc", "a control character (U+0000) is not allowed")],
        4: [
            ("applicant_first_name", "a control character (U+0007) is not allowed"),
            ("dob", "a control character (U+0007) is not allowed"),
        ],
    }
    assert not KycRecord.objects.exists()  # all or nothing: the valid row 3 is not saved either


@pytest.mark.django_db
def test_a_nul_and_a_bel_in_workbook_cells_are_problems_of_their_rows_and_columns(
    alice: User, branch_a: Branch
) -> None:
    # XML cannot hold either character: Excel writes them as the escapes _x0000_ and _x0007_, and openpyxl
    # refuses to write them at all, so the workbook carries the escapes as Excel would.
    records = rows(3)
    records[0]["poa_vtc"] = "Mum_x0000_bai"
    records[2]["applicant_first_name"] = "RA_x0007_VI"
    found = _problems(xlsx_bytes(records), "f.xlsx", alice, branch_a)
    assert found == {
        2: [("poa_vtc", "a control character (U+0000) is not allowed")],
        4: [("applicant_first_name", "a control character (U+0007) is not allowed")],
    }
    assert not KycRecord.objects.exists()


@pytest.mark.django_db
def test_a_line_break_in_an_address_cell_is_left_to_validation(alice: User, branch_a: Branch) -> None:
    records = rows(3)
    records[1]["poa_address_line_1"] = "12 Marine Drive\nFlat 4B"
    found: dict[int, list[str]] = {}
    records_import(
        actor=alice,
        branch=branch_a,
        opener=opener(csv_bytes(records)),
        save=False,
        on_problems=lambda row, problems: found.setdefault(row, []).extend(p.message for p in problems),
    )
    (message,) = found[4]  # the quoted cell spans two lines: the row is numbered by its last
    assert "must not contain the | character, tabs, line breaks" in message


def test_a_text_file_with_a_nul_in_a_cell_is_read_and_a_binary_file_is_refused() -> None:
    text = csv_bytes(rows(1, poa_vtc="Mum\x00bai"))
    (row,) = read_rows(opener(text), "f.csv")
    assert row.notes == [("poa_vtc", "a control character (U+0000) is not allowed", "error")]
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    utf16 = "kyc_ref_no,pan\r\nA,B\r\n".encode("utf-16-le")  # without a byte order mark
    for data in (png, utf16, b"\x00" * 4096):
        with pytest.raises(FileRefused, match="binary data"):
            list(read_rows(opener(data), "f.csv"))
