"""The import templates: an example row the import skips, the workbook's code sheets (kept on upload, not
read), and the import page's guidance."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.utils import timezone

from bulkdata.parsers import COLUMNS, EXAMPLE_REF, OPTIONAL_COLUMNS, FileRefused, RawRow, read_rows
from bulkdata.rows import prepare
from bulkdata.template import EXAMPLE, example_row
from codelists.codes import STATIC_CODE_BOOK
from codelists.selectors import CODE_LISTS, code_book
from institutions.models import User
from tests.bulkdata.helpers import cell, rows
from tests.codelists.fixtures import ensure_code_lists_seeded
from tests.conftest import otp_login
from tests.records.factories import AS_OF

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def code_lists_seeded(django_db_setup: None, django_db_blocker: Any) -> None:
    """The seeded lists and PIN master, which a transactional test elsewhere may have flushed."""
    ensure_code_lists_seeded(django_db_blocker)


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


def read(data: bytes, name: str) -> list[RawRow]:
    return list(read_rows(opener(data), name))


@pytest.fixture
def maker(alice: User) -> Client:
    client = Client()
    otp_login(client, alice)
    return client


def template_workbook(maker: Client) -> openpyxl.Workbook:
    response = maker.get("/data/imports/template.xlsx")
    assert response.status_code == 200
    return openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))


def saved(workbook: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_the_example_row_is_a_valid_record() -> None:
    problems = prepare(RawRow(2, dict(EXAMPLE)), today=AS_OF, warnings_block=True, codes=code_book()).problems
    assert problems == []


def test_the_example_row_is_verified_today_so_copies_of_it_are_not_overdue() -> None:
    today = timezone.localdate()
    values = dict(zip(COLUMNS, example_row(), strict=True))

    assert values["kyc_verification_date"] == today.isoformat()
    assert values["kyc_declaration_date"] == (today - timedelta(days=1)).isoformat()
    problems = prepare(RawRow(2, values), today=today, warnings_block=True, codes=code_book()).problems
    assert problems == []


def test_workbook_template_has_the_example_row_and_a_sheet_per_code_list(maker: Client) -> None:
    workbook = template_workbook(maker)
    assert workbook.sheetnames == ["Records"] + [f"Codes - {title}" for _, title in CODE_LISTS]
    records = workbook["Records"]
    assert [c.value for c in records[1]] == list(COLUMNS)
    assert records["A2"].value == EXAMPLE_REF
    genders = [tuple(c.value for c in row[:2]) for row in workbook["Codes - Gender"].iter_rows(min_row=2)]
    assert genders == [("M", "Male"), ("F", "Female"), ("T", "Transgender")]
    assert workbook["Codes - States"]["C2"].value == "poa_state, current_state"


def test_the_downloaded_workbook_filled_in_below_the_example_imports_as_it_is(maker: Client) -> None:
    workbook = template_workbook(maker)
    for record in rows(2):
        workbook["Records"].append([cell(record.get(name)) for name in COLUMNS])
    found = read(saved(workbook), "filled.xlsx")
    assert [(r.number, r.values["kyc_ref_no"]) for r in found] == [(3, "IMP-00001"), (4, "IMP-00002")]


def test_the_workbook_with_only_the_example_row_says_to_add_records(maker: Client) -> None:
    with pytest.raises(FileRefused, match="only the template's example row"):
        read(saved(template_workbook(maker)), "template.xlsx")


def test_a_sheet_not_named_as_the_template_names_its_code_sheets_is_refused(maker: Client) -> None:
    workbook = template_workbook(maker)
    workbook["Records"].append([cell(v) for v in rows(1)[0].values()])
    workbook.create_sheet("Notes")
    with pytest.raises(FileRefused, match=r"2 sheets that could hold records \(Records, Notes\)"):
        read(saved(workbook), "f.xlsx")
    workbook.remove(workbook["Notes"])
    workbook["Codes - Gender"].title = "Gender"  # renamed: no longer known as a code sheet
    with pytest.raises(FileRefused, match="Records, Gender"):
        read(saved(workbook), "f.xlsx")


def test_records_on_a_renamed_sheet_beside_the_code_sheets_are_read(maker: Client) -> None:
    workbook = template_workbook(maker)
    workbook["Records"].title = "Branch MUM November"
    workbook["Branch MUM November"].append([cell(rows(1)[0].get(name)) for name in COLUMNS])
    assert [r.values["kyc_ref_no"] for r in read(saved(workbook), "f.xlsx")] == ["IMP-00001"]


def test_csv_template_has_the_example_row_unless_asked_for_the_header_only(maker: Client) -> None:
    text = b"".join(maker.get("/data/imports/template.csv").streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines == [list(COLUMNS), example_row()]
    bare = b"".join(maker.get("/data/imports/template.csv?example=no").streaming_content)
    assert list(csv.reader(io.StringIO(bare.decode("utf-8-sig")))) == [list(COLUMNS)]
    # Filled in below the example: the example is skipped, the rows keep their spreadsheet numbers.
    record = rows(1)[0]
    line = io.StringIO()
    csv.writer(line).writerow([cell(record.get(name)) for name in COLUMNS])
    filled = text + line.getvalue()
    assert [(r.number, r.values["kyc_ref_no"]) for r in read(filled.encode(), "f.csv")] == [(3, "IMP-00001")]
    with pytest.raises(FileRefused, match="only the template's example row"):
        read(text.encode(), "f.csv")


def test_the_example_is_skipped_whatever_its_case_but_only_by_its_reference() -> None:
    header = ",".join(COLUMNS)
    lower = dict(EXAMPLE, kyc_ref_no=" example-1 ")
    near = dict(EXAMPLE, kyc_ref_no="EXAMPLE-10")
    data = "\r\n".join([header, *(",".join(f'"{r[n]}"' for n in COLUMNS) for r in (lower, near))])
    assert [r.values["kyc_ref_no"] for r in read(data.encode(), "f.csv")] == ["EXAMPLE-10"]


def test_the_import_page_explains_formats_codes_and_the_example(maker: Client) -> None:
    html = maker.get("/data/imports/").content.decode()
    assert 'href="/codes/"' in html
    assert "DD-MM-YYYY" in html and "DD/MM/YYYY" in html and "YYYY-MM-DD" in html
    assert EXAMPLE_REF in html
    assert 'href="/data/imports/template.csv?example=no"' in html


def test_static_book_still_refuses_what_the_template_does_not_teach() -> None:
    row = RawRow(2, dict(EXAMPLE, gender="Q", kyc_ref_no="R-1"))
    problems = prepare(row, today=AS_OF, warnings_block=False, codes=STATIC_CODE_BOOK).problems
    assert [p.field for p in problems] == ["gender"]


def test_the_workbook_header_says_which_columns_are_required_and_which_optional(maker: Client) -> None:
    header = {str(c.value): c for c in template_workbook(maker)["Records"][1]}
    assert header["pan"].comment.text == "PAN. Required."
    assert header["pan"].font.b
    current = header["current_address_line_1"]
    assert (
        "Optional" in current.comment.text
        and "current_address_same_as_poa_address is N" in current.comment.text
    )
    assert not current.font.b
    assert {name for name, c in header.items() if "Optional" in c.comment.text} == set(OPTIONAL_COLUMNS)


def test_the_import_page_lists_the_optional_columns(maker: Client) -> None:
    html = maker.get("/data/imports/").content.decode()
    assert "left out of the file" in html
    for name in OPTIONAL_COLUMNS:
        assert f">{name}</code>" in html
    assert ">pan</code>" not in html
