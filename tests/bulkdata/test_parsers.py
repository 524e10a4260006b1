"""Bad files: each gets a clear message from the reader, before anything could be saved."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from bulkdata.parsers import MAX_BLANK_ROWS, FileRefused, RawRow, read_rows
from kwikid.fields import FIELDS
from tests.bulkdata.helpers import csv_bytes, json_body, rows, xlsx_bytes


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


def read(data: bytes, name: str = "f.csv") -> list[RawRow]:
    return list(read_rows(opener(data), name))


def refused(data: bytes, name: str = "f.csv") -> str:
    with pytest.raises(FileRefused) as info:
        read(data, name)
    return str(info.value)


def test_csv_rows_are_numbered_as_in_a_spreadsheet() -> None:
    found = read(csv_bytes(rows(2)))
    assert [row.number for row in found] == [2, 3]
    assert found[0].values["kyc_ref_no"] == "IMP-00001"
    assert found[0].values["dob"] == "1985-04-12"


def test_utf8_byte_order_mark_is_accepted() -> None:
    found = read(csv_bytes(rows(1), bom=True))
    assert found[0].values["kyc_ref_no"] == "IMP-00001"


def test_semicolon_separated_csv_is_read() -> None:
    data = csv_bytes(rows(1)).decode().replace(",", ";").encode()
    assert read(data)[0].values["poa_pin_code"] == "400001"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "The file is empty."),
        (b"\r\n\r\n   \r\n", "The file is empty."),
        ("kyc_ref_no,pan\n".encode("utf-16"), "UTF-16"),
        (b"\x00\x01\x02binary\x00" * 10, "binary data"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Old Excel files (.xls)"),
        (b"PK\x03\x04 not really a zip", "not a readable Excel workbook"),
    ],
    ids=["empty", "blank-lines-only", "utf16-bom", "binary", "old-xls", "broken-zip"],
)
def test_unreadable_files_are_refused_with_the_reason(data: bytes, expected: str) -> None:
    assert expected in refused(data)


def test_latin1_csv_names_the_encoding_and_the_fix() -> None:
    records = rows(3)
    records[2]["poa_vtc"] = "Bengaluru"
    data = csv_bytes(records).replace(
        b"Bengaluru", "Bengalūru".encode("latin-1", "replace").replace(b"?", b"\xfc")
    )
    message = refused(data)
    assert "not UTF-8 text (line 4)" in message
    assert "CSV UTF-8" in message


def test_missing_extra_and_repeated_columns_are_named() -> None:
    columns = [c for c in FIELDS if c != "pan"] + ["kyc_ref_no", "shoe_size"]
    message = refused(csv_bytes(rows(1), columns))
    assert "repeated columns: kyc_ref_no" in message
    assert "unknown columns: shoe_size" in message
    assert "missing required columns: pan" in message


def test_header_without_records_is_refused() -> None:
    assert "header row but no records" in refused(csv_bytes([]))


def test_a_ten_megabyte_cell_is_refused_without_reading_it_whole() -> None:
    data = csv_bytes(rows(1)) + b"X" * (10 * 1024 * 1024) + b"\r\n"
    assert "longer than 65,536 characters" in refused(data)


def test_a_quoted_huge_cell_is_refused() -> None:
    line = ",".join(['"' + "A" * 5000 + '"'] + [""] * (len(FIELDS) - 1))
    data = csv_bytes([]) + line.encode() + b"\r\n"
    assert "Row 2, column kyc_ref_no: the cell holds 5,000 characters" in refused(data)


def test_a_million_blank_lines_are_refused_early() -> None:
    data = csv_bytes(rows(1)) + b"\r\n" * 1_000_000
    assert f"more than {MAX_BLANK_ROWS:,} blank rows" in refused(data)


def test_a_row_wider_than_the_header_is_refused() -> None:
    data = csv_bytes(rows(1)).rstrip(b"\r\n") + b",surprise\r\n"
    assert "Row 2 has 40 cells but the header names 39 columns" in refused(data)


def test_xlsx_is_read_with_typed_cells() -> None:
    found = read(xlsx_bytes(rows(2)), "f.xlsx")
    assert [row.number for row in found] == [2, 3]
    assert found[0].values["kyc_ref_no"] == "IMP-00001"


def test_xlsx_with_several_sheets_is_refused() -> None:
    assert "The workbook has 2 sheets" in refused(xlsx_bytes(rows(1), sheets=2), "f.xlsx")


def test_xlsx_with_a_formula_is_refused_naming_the_cell() -> None:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(rows(1))))
    workbook.active["B2"] = '=CONCAT("ABCPE","1234F")'
    out = io.BytesIO()
    workbook.save(out)
    message = refused(out.getvalue(), "f.xlsx")
    assert "Cell B2 holds a formula" in message
    assert "Paste special" in message


def test_xlsx_with_a_huge_cell_is_refused() -> None:
    records = rows(1)
    records[0]["poa_address_line_1"] = "A" * 20_000
    assert "column poa_address_line_1: the cell holds 20,000 characters" in refused(
        xlsx_bytes(records), "f.xlsx"
    )


@pytest.mark.parametrize("wrapped", [True, False], ids=["request-body", "records-array"])
def test_json_request_body_or_array_is_flattened(wrapped: bool) -> None:
    found = read(json_body(rows(2), wrapped=wrapped), "f.json")
    assert [row.number for row in found] == [1, 2]
    values = found[0].values
    assert values["applicant_first_name"] == "RAVI"
    assert values["differently_abled_flag"] is False
    assert values["poa_pin_code"] == "400001"
    assert values.get("branch_code") == ("BRA" if wrapped else None)


def test_json_unknown_members_are_reported_on_their_row() -> None:
    body: dict[str, Any] = json.loads(json_body(rows(1)))
    body["records"][0]["basic_details"]["shoe_size"] = 9
    body["records"][0]["remarks"] = "x"
    found = read(json.dumps(body).encode(), "f.json")
    assert ("basic_details.shoe_size", "basic_details.shoe_size is not a field of a KYC record", "error") in (
        found[0].notes
    )
    assert ("remarks", "remarks is not kept by the portal and was left out", "warning") in found[0].notes


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"records": [{"kyc_ref_no": "A"', "The JSON is not valid"),
        (b'{"fi_code": "X"}', "no records array"),
        (b'{"records": []}', "holds no records"),
        (b'{"records": [1, 2]}', "Record 1 is not a JSON object"),
    ],
    ids=["truncated", "no-records", "empty-records", "not-objects"],
)
def test_bad_json_is_refused(data: bytes, expected: str) -> None:
    assert expected in refused(data, "f.json")
