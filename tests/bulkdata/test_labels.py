"""Natural values in coded columns: a label ("Male", "Maharashtra") is taken for its code when exactly one
entry of the list has it; never guessed when two share it; otherwise the message says what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from bulkdata.parsers import RawRow
from bulkdata.rows import PreparedRow, prepare
from codelists import services
from codelists.codes import STATIC_LISTS, CodeBook
from codelists.models import State
from codelists.selectors import code_book
from tests.bulkdata.helpers import rows
from tests.codelists.fixtures import ensure_code_lists_seeded
from tests.records.factories import AS_OF


@pytest.fixture(scope="module", autouse=True)
def code_lists_seeded(django_db_setup: None, django_db_blocker: Any) -> None:
    """The seeded lists and PIN master, which a transactional test elsewhere may have flushed."""
    ensure_code_lists_seeded(django_db_blocker)


def prepared(codes: CodeBook | None = None, **values: Any) -> PreparedRow:
    return prepare(RawRow(2, {**rows(1)[0], **values}), today=AS_OF, warnings_block=False, codes=codes)


def errors(row: PreparedRow) -> dict[str, str]:
    return {p.field: p.message for p in row.problems if p.is_error}


NATURAL = {
    "applicant_name_title": "Mr",
    "applicant_rel_details_flag": "father",
    "gender": "Male",
    "poa_document": "Passport",
    "poa_state": "Maharashtra",
    "poa_country": "India",
    "current_state": "  MAHARASHTRA ",
    "current_country": "india",
    "kyc_type": "Normal",
    "kyc_type_of_document_submitted": "Certified copies of OVD",
    "current_address_same_as_poa_address": "No",
}


def test_labels_become_their_codes_in_every_coded_column() -> None:
    row = prepared(**NATURAL)
    assert errors(row) == {}
    assert {name: row.values[name] for name in NATURAL} == {
        "applicant_name_title": "MR",
        "applicant_rel_details_flag": "FATHER",
        "gender": "M",
        "poa_document": "02",
        "poa_state": "MH",
        "poa_country": "IN",
        "current_state": "MH",
        "current_country": "IN",
        "kyc_type": "01",
        "kyc_type_of_document_submitted": "01",
        "current_address_same_as_poa_address": "N",
    }


def test_yes_as_a_label_still_blanks_the_current_address() -> None:
    row = prepared(current_address_same_as_poa_address="Yes")
    assert row.values["current_address_same_as_poa_address"] == "Y"
    assert row.values["current_state"] == "" and errors(row) == {}


def test_labels_match_without_diacritics_and_extra_spaces() -> None:
    row = prepared(poa_state="tamil   nadu", poa_pin_code="600001", poa_vtc="Chennai")
    assert row.values["poa_state"] == "TN"
    book = CodeBook({**STATIC_LISTS, "states": (("MH", "Mahārāshtra"),)})
    assert prepared(book, poa_state="maharashtra", current_state="MH").values["poa_state"] == "MH"


def test_a_label_two_entries_share_is_refused_and_not_guessed() -> None:
    book = CodeBook({**STATIC_LISTS, "genders": (("M", "Male"), ("X", "Male"), ("F", "Female"))})
    row = prepared(book, gender="male")
    assert row.values["gender"] == "MALE"
    assert errors(row) == {"gender": "Gender: “Male” is the label of 2 codes (M, X); write the code"}


def test_a_value_that_is_neither_code_nor_label_says_what_is_allowed() -> None:
    row = prepared(gender="Mail", poa_state="Maharastra")
    assert errors(row) == {
        "gender": "Gender must be one of: M, F, T, or a label as the Codes page lists it",
        "poa_state": "State must be a 2-letter CERSAI state code, e.g. MH for Maharashtra, "
        "or a label as the Codes page lists it",
    }


def test_codes_still_win_over_labels() -> None:
    # "MS" is a code (Ms); it is never read as some other entry's label.
    assert prepared(applicant_name_title="ms", gender="F").values["applicant_name_title"] == "MS"


@pytest.mark.django_db
def test_labels_come_from_the_admin_edited_code_book(django_db_blocker: Any) -> None:
    State.objects.filter(code="MH").update(label="Maha Rashtra")
    services.code_book_touch()
    book = code_book()
    assert prepared(book, poa_state="maha rashtra", current_state="Maha Rashtra").values["poa_state"] == "MH"
    assert "poa_state" in errors(prepared(book, poa_state="Maharashtra"))
    State.objects.filter(code="MH").update(is_active=False)
    services.code_book_touch()
    # An inactive entry's label is not taken: the code it names is no longer in use.
    assert "poa_state" in errors(prepared(code_book(), poa_state="Maha Rashtra"))
