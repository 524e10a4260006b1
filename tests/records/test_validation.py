"""CKYC record rules (records.validation): pure tests, no database."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest

from codelists import codes
from records.validation import (
    AADHAAR_IN_TEXT_MESSAGE,
    AADHAAR_MESSAGE,
    FIELD_LABELS,
    FIELDS,
    PAN_MESSAGE,
    Problem,
    blocking_problems,
    clean_record,
    looks_like_aadhaar,
    normalise_record,
    validate_record,
)

from .factories import AS_OF, differently_abled_record, minimal_record, valid_record

# An independent Verhoeff implementation, to build check digits the code under test must accept.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_digit(digits: str) -> str:
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _D[check][_P[(position + 1) % 8][int(digit)]]
    return str(_INV[check])


def fake_aadhaar(first_eleven: str = "49182736450") -> str:
    """A Verhoeff-valid 12-digit number starting 2-9: shaped like an Aadhaar number, not a real one."""
    return first_eleven + verhoeff_digit(first_eleven)


AADHAAR = fake_aadhaar()
AADHAAR_BAD_CHECKSUM = AADHAAR[:-1] + str((int(AADHAAR[-1]) + 1) % 10)


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == "error"]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == "warning"]


def check(record: dict[str, Any], *, complete: bool = True) -> list[Problem]:
    return validate_record(record, complete=complete, today=AS_OF)


def current_same_as_poa(**still_filled: str) -> dict[str, str]:
    """Changes that set same-as-POA to Y and blank the current address, except the fields given."""
    blanks = dict.fromkeys(
        ("current_address_line_1", "current_vtc", "current_state", "current_country", "current_pin_code"), ""
    )
    return {"current_address_same_as_poa_address": "Y", **blanks, **still_filled}


DISABLED = {"differently_abled_flag": True, "impairment_type": "03", "impairment_percentage": 60}
DISABLED_UDID = {**DISABLED, "udid_number": "KA0420231985654321"}


# -- whole records ------------------------------------------------------------------------------------


def test_complete_valid_record_has_no_problems() -> None:
    assert check(valid_record()) == []


def test_minimal_valid_record_has_no_problems() -> None:
    assert check(minimal_record()) == []


def test_differently_abled_record_with_its_three_fields_is_valid() -> None:
    assert check(differently_abled_record()) == []


def test_valid_record_passes_against_the_real_clock() -> None:
    assert errors(validate_record(valid_record())) == []


def test_missing_keys_count_as_blank_and_every_required_field_is_reported() -> None:
    required = {
        "kyc_ref_no",
        "pan",
        "applicant_name_title",
        "applicant_first_name",
        "applicant_rel_details_flag",
        "applicant_rel_name_title",
        "applicant_rel_first_name",
        "gender",
        "dob",
        "poa_document",
        "poa_document_number",
        "poa_address_line_1",
        "poa_vtc",
        "poa_state",
        "poa_country",
        "current_address_same_as_poa_address",
        "kyc_declaration_date",
        "kyc_declaration_place",
        "kyc_verification_date",
        "kyc_type",
        "kyc_verifier_name",
        "kyc_verifier_designation",
        "kyc_verifier_branch",
        "kyc_verifier_employee_code",
        "kyc_type_of_document_submitted",
    }
    problems = check({})
    assert {problem.field for problem in problems} == required
    assert all(problem.message.endswith("is required") for problem in problems)


def test_pin_is_required_when_the_country_is_india() -> None:
    problems = check({"poa_country": "IN"})
    assert "poa_pin_code" in {problem.field for problem in problems}


def test_problems_come_in_api_field_order() -> None:
    record = valid_record()
    record.update(
        kyc_type_of_document_submitted="99",
        pan="bad",
        mobile_number="123",
        kyc_ref_no="",
        poa_state="ZZ",
        dob=date(2030, 1, 1),
    )
    fields = [problem.field for problem in check(record)]
    assert fields == [
        "kyc_ref_no",
        "pan",
        "dob",
        "poa_state",
        "mobile_number",
        "kyc_type_of_document_submitted",
    ]
    assert fields == sorted(fields, key=FIELDS.index)


# -- one broken rule, one error on the expected field --------------------------------------------------

LONG = "A" * 51

MUTATIONS: list[tuple[str, dict[str, Any], str]] = [
    # reference number
    ("ref blank", {"kyc_ref_no": ""}, "kyc_ref_no"),
    ("ref whitespace only", {"kyc_ref_no": "   "}, "kyc_ref_no"),
    ("ref too long", {"kyc_ref_no": "R" * 51}, "kyc_ref_no"),
    ("ref with space", {"kyc_ref_no": "BR01 000123"}, "kyc_ref_no"),
    ("ref with hash", {"kyc_ref_no": "BR01#000123"}, "kyc_ref_no"),
    # PAN
    ("pan blank", {"pan": ""}, "pan"),
    ("pan 4th letter not P", {"pan": "ABCDE1234F"}, "pan"),
    ("pan company", {"pan": "ABCCE1234F"}, "pan"),
    ("pan too short", {"pan": "ABCP1234F"}, "pan"),
    ("pan lower case", {"pan": "abcpe1234f"}, "pan"),
    ("pan digits misplaced", {"pan": "ABCPE12345"}, "pan"),
    ("pan not text", {"pan": 1234}, "pan"),
    # applicant title and names
    ("title blank", {"applicant_name_title": ""}, "applicant_name_title"),
    ("title unknown", {"applicant_name_title": "SIR"}, "applicant_name_title"),
    ("title label not code", {"applicant_name_title": "Mr"}, "applicant_name_title"),
    ("first name blank", {"applicant_first_name": ""}, "applicant_first_name"),
    ("first name too long", {"applicant_first_name": LONG}, "applicant_first_name"),
    ("first name digit", {"applicant_first_name": "RAVI2"}, "applicant_first_name"),
    ("first name double space", {"applicant_first_name": "RAVI  KUMAR"}, "applicant_first_name"),
    ("first name apostrophe", {"applicant_first_name": "D'SOUZA"}, "applicant_first_name"),
    ("first name dot", {"applicant_first_name": "K. RAVI"}, "applicant_first_name"),
    ("middle name special", {"applicant_middle_name": "K."}, "applicant_middle_name"),
    ("middle name too long", {"applicant_middle_name": LONG}, "applicant_middle_name"),
    # relative
    ("rel flag blank", {"applicant_rel_details_flag": ""}, "applicant_rel_details_flag"),
    ("rel flag unknown", {"applicant_rel_details_flag": "MOTHER"}, "applicant_rel_details_flag"),
    ("rel title blank", {"applicant_rel_name_title": ""}, "applicant_rel_name_title"),
    ("rel title unknown", {"applicant_rel_name_title": "LORD"}, "applicant_rel_name_title"),
    ("rel first name blank", {"applicant_rel_first_name": ""}, "applicant_rel_first_name"),
    ("rel first name symbol", {"applicant_rel_first_name": "SURE@SH"}, "applicant_rel_first_name"),
    ("rel first name too long", {"applicant_rel_first_name": LONG}, "applicant_rel_first_name"),
    ("rel first name lone apostrophe", {"applicant_rel_first_name": "'"}, "applicant_rel_first_name"),
    ("rel middle name digit", {"applicant_rel_middle_name": "X1"}, "applicant_rel_middle_name"),
    # gender and date of birth
    ("gender blank", {"gender": ""}, "gender"),
    ("gender unknown", {"gender": "X"}, "gender"),
    ("dob blank", {"dob": None}, "dob"),
    ("dob future", {"dob": date(2027, 1, 1)}, "dob"),
    ("dob string", {"dob": "1985-04-12"}, "dob"),
    ("dob datetime", {"dob": datetime(1985, 4, 12, 10, 0)}, "dob"),
    ("dob before 1900", {"dob": date(1899, 12, 31)}, "dob"),
    ("dob after declaration", {"dob": date(2026, 11, 5)}, "dob"),
    ("dob on declaration date", {"dob": date(2026, 11, 2)}, "dob"),
    # disability
    ("flag not boolean", {"differently_abled_flag": "Y"}, "differently_abled_flag"),
    ("impairment type missing", {**DISABLED_UDID, "impairment_type": ""}, "impairment_type"),
    ("impairment type unknown", {**DISABLED_UDID, "impairment_type": "42"}, "impairment_type"),
    ("percentage missing", {**DISABLED_UDID, "impairment_percentage": None}, "impairment_percentage"),
    ("percentage over 100", {**DISABLED_UDID, "impairment_percentage": 101}, "impairment_percentage"),
    ("percentage negative", {**DISABLED_UDID, "impairment_percentage": -1}, "impairment_percentage"),
    ("percentage text", {**DISABLED_UDID, "impairment_percentage": "50"}, "impairment_percentage"),
    ("percentage fraction", {**DISABLED_UDID, "impairment_percentage": 40.5}, "impairment_percentage"),
    ("percentage boolean", {**DISABLED_UDID, "impairment_percentage": True}, "impairment_percentage"),
    ("udid too short", {**DISABLED, "udid_number": "KA04202319856543"}, "udid_number"),
    ("udid lower case", {**DISABLED, "udid_number": "ka0420231985654321"}, "udid_number"),
    ("udid too long", {**DISABLED, "udid_number": "KA04202319856543210123"}, "udid_number"),
    # proof of address document
    ("poa document blank", {"poa_document": ""}, "poa_document"),
    ("poa deemed document", {"poa_document": "11"}, "poa_document"),
    ("poa legal entity code", {"poa_document": "06"}, "poa_document"),
    ("poa simplified code", {"poa_document": "S01"}, "poa_document"),
    ("poa number blank", {"poa_document_number": ""}, "poa_document_number"),
    (
        "licence too long",
        {"poa_document": "03", "poa_document_number": "MH" + "1" * 19},
        "poa_document_number",
    ),
    ("NREGA too long", {"poa_document": "05", "poa_document_number": "MH" + "1" * 39}, "poa_document_number"),
    ("NPR too long", {"poa_document": "08", "poa_document_number": "N" * 21}, "poa_document_number"),
    ("aadhaar 5 digits", {"poa_document": "01", "poa_document_number": "12345"}, "poa_document_number"),
    ("aadhaar letters", {"poa_document": "09", "poa_document_number": "12AB"}, "poa_document_number"),
    ("aadhaar masked", {"poa_document": "10", "poa_document_number": "XXXX1234"}, "poa_document_number"),
    ("aadhaar full", {"poa_document": "01", "poa_document_number": AADHAAR}, "poa_document_number"),
    # POA address
    ("poa line blank", {"poa_address_line_1": ""}, "poa_address_line_1"),
    ("poa line too long", {"poa_address_line_1": "A" * 56}, "poa_address_line_1"),
    ("poa line pipe", {"poa_address_line_1": "12 Marine Drive | Flat 4B"}, "poa_address_line_1"),
    ("poa line newline", {"poa_address_line_1": "12 Marine Drive\nFlat 4B"}, "poa_address_line_1"),
    ("poa vtc blank", {"poa_vtc": ""}, "poa_vtc"),
    ("poa vtc too long", {"poa_vtc": LONG}, "poa_vtc"),
    ("poa state blank", {"poa_state": ""}, "poa_state"),
    ("poa state unknown", {"poa_state": "XX"}, "poa_state"),
    ("poa state name", {"poa_state": "Maharashtra"}, "poa_state"),
    ("poa country blank", {"poa_country": ""}, "poa_country"),
    ("poa country unknown", {"poa_country": "ZZ"}, "poa_country"),
    ("poa country alpha-3", {"poa_country": "IND"}, "poa_country"),
    ("poa pin blank", {"poa_pin_code": ""}, "poa_pin_code"),
    ("poa pin leading zero", {"poa_pin_code": "012345"}, "poa_pin_code"),
    ("poa pin 5 digits", {"poa_pin_code": "40001"}, "poa_pin_code"),
    ("poa pin letters", {"poa_pin_code": "4000A1"}, "poa_pin_code"),
    ("foreign postal code too long", {"poa_country": "GB", "poa_pin_code": "SW1A 1AA 12"}, "poa_pin_code"),
    ("foreign postal code symbol", {"poa_country": "GB", "poa_pin_code": "SW1A#1AA"}, "poa_pin_code"),
    # current address
    ("same flag blank", {"current_address_same_as_poa_address": ""}, "current_address_same_as_poa_address"),
    (
        "same flag unknown",
        {"current_address_same_as_poa_address": "X"},
        "current_address_same_as_poa_address",
    ),
    ("current line missing", {"current_address_line_1": ""}, "current_address_line_1"),
    ("current line too long", {"current_address_line_1": "A" * 56}, "current_address_line_1"),
    ("current vtc missing", {"current_vtc": ""}, "current_vtc"),
    ("current vtc too long", {"current_vtc": LONG}, "current_vtc"),
    ("current state missing", {"current_state": ""}, "current_state"),
    ("current state unknown", {"current_state": "QQ"}, "current_state"),
    ("current country missing", {"current_country": ""}, "current_country"),
    ("current country unknown", {"current_country": "XK1"}, "current_country"),
    ("current pin missing", {"current_pin_code": ""}, "current_pin_code"),
    ("current pin malformed", {"current_pin_code": "41100"}, "current_pin_code"),
    ("Y with line", current_same_as_poa(current_address_line_1="7 FC Road"), "current_address_line_1"),
    ("Y with vtc", current_same_as_poa(current_vtc="Pune"), "current_vtc"),
    ("Y with state", current_same_as_poa(current_state="MH"), "current_state"),
    ("Y with country", current_same_as_poa(current_country="IN"), "current_country"),
    ("Y with pin", current_same_as_poa(current_pin_code="411005"), "current_pin_code"),
    # contact
    ("isd with plus", {"mobile_isd": "+91"}, "mobile_isd"),
    ("isd too long", {"mobile_isd": "9101"}, "mobile_isd"),
    ("mobile India 9 digits", {"mobile_number": "987654321"}, "mobile_number"),
    ("mobile India with ISD prefix", {"mobile_number": "919876543210"}, "mobile_number"),
    ("mobile India spaced", {"mobile_number": "98765 43210"}, "mobile_number"),
    ("mobile abroad too long", {"mobile_isd": "44", "mobile_number": "1" * 21}, "mobile_number"),
    ("mobile abroad with plus", {"mobile_isd": "44", "mobile_number": "+447911123456"}, "mobile_number"),
    # declaration and verification
    ("declaration date blank", {"kyc_declaration_date": None}, "kyc_declaration_date"),
    ("declaration date future", {"kyc_declaration_date": date(2026, 12, 1)}, "kyc_declaration_date"),
    ("declaration date text", {"kyc_declaration_date": "02-11-2026"}, "kyc_declaration_date"),
    ("place blank", {"kyc_declaration_place": ""}, "kyc_declaration_place"),
    ("place too long", {"kyc_declaration_place": LONG}, "kyc_declaration_place"),
    ("verification date blank", {"kyc_verification_date": None}, "kyc_verification_date"),
    ("verification date future", {"kyc_verification_date": date(2026, 11, 21)}, "kyc_verification_date"),
    # KYC type, verifier, document submitted
    ("kyc type blank", {"kyc_type": ""}, "kyc_type"),
    ("kyc type small account", {"kyc_type": "02"}, "kyc_type"),
    ("kyc type simplified", {"kyc_type": "03"}, "kyc_type"),
    ("verifier name blank", {"kyc_verifier_name": ""}, "kyc_verifier_name"),
    ("verifier name too long", {"kyc_verifier_name": "A" * 151}, "kyc_verifier_name"),
    ("verifier name tab", {"kyc_verifier_name": "Anita\tDeshpande"}, "kyc_verifier_name"),
    ("designation blank", {"kyc_verifier_designation": ""}, "kyc_verifier_designation"),
    ("designation too long", {"kyc_verifier_designation": LONG}, "kyc_verifier_designation"),
    ("branch blank", {"kyc_verifier_branch": ""}, "kyc_verifier_branch"),
    ("branch too long", {"kyc_verifier_branch": LONG}, "kyc_verifier_branch"),
    ("branch pipe", {"kyc_verifier_branch": "Fort|Mumbai"}, "kyc_verifier_branch"),
    ("employee code blank", {"kyc_verifier_employee_code": ""}, "kyc_verifier_employee_code"),
    ("employee code too long", {"kyc_verifier_employee_code": LONG}, "kyc_verifier_employee_code"),
    ("doc submitted blank", {"kyc_type_of_document_submitted": ""}, "kyc_type_of_document_submitted"),
    ("doc submitted unknown", {"kyc_type_of_document_submitted": "07"}, "kyc_type_of_document_submitted"),
]


# Style rules (see the README's rules table): one warning on the field, no error.
WARNING_MUTATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("type without flag", {"impairment_type": "01"}, "impairment_type"),
    ("percentage without flag", {"impairment_percentage": 40}, "impairment_percentage"),
    ("udid without flag", {"udid_number": "KA0420231985654321"}, "udid_number"),
    ("name lower case", {"applicant_middle_name": "Kumar"}, "applicant_middle_name"),
    ("value not trimmed", {"kyc_verifier_name": "Anita Deshpande "}, "kyc_verifier_name"),
    ("title Mrs for a man", {"applicant_name_title": "MRS"}, "applicant_name_title"),
    ("spouse details without Mrs", {"applicant_rel_details_flag": "SPOUSE"}, "applicant_rel_details_flag"),
]


@pytest.mark.parametrize(
    ("changes", "field"), [case[1:] for case in MUTATIONS], ids=[case[0] for case in MUTATIONS]
)
def test_breaking_one_rule_gives_one_error_on_that_field(changes: dict[str, Any], field: str) -> None:
    record = valid_record() | changes
    found = errors(check(record))
    assert [problem.field for problem in found] == [field], found
    assert found[0].message


def test_every_field_is_covered_by_a_mutation() -> None:
    assert {field for _, _, field in MUTATIONS} == set(FIELDS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [case[1:] for case in WARNING_MUTATIONS],
    ids=[case[0] for case in WARNING_MUTATIONS],
)
def test_style_rules_warn_on_that_field_without_blocking(changes: dict[str, Any], field: str) -> None:
    problems = check(valid_record() | changes)
    assert errors(problems) == []
    assert [problem.field for problem in warnings(problems)] == [field], problems
    assert blocking_problems(problems) == []
    assert blocking_problems(problems, warnings_block=True) == warnings(problems)


def test_pan_message_says_what_is_expected() -> None:
    (problem,) = check(valid_record() | {"pan": "ABCDE1234F"})
    assert problem == Problem("pan", PAN_MESSAGE)
    assert problem.message == (
        "PAN must be 5 letters, 4 digits, 1 letter, with P as 4th letter for an individual"
    )


def test_messages_do_not_repeat_personal_data() -> None:
    record = valid_record() | {
        "pan": "ABCDE1234F",
        "poa_document_number": "Z98765",
        "mobile_number": "5876543210",
        "applicant_first_name": "RAVI2",
    }
    problems = check(record)
    assert len(problems) == 4
    for problem in problems:
        for value in ("ABCDE1234F", "Z98765", "5876543210", "RAVI2"):
            assert value not in problem.message


# -- rules that must NOT fire --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"dob": date(2010, 1, 1), "kyc_type": "05"}, id="minor on a minor KYC"),
        pytest.param({"dob": date(2008, 11, 2)}, id="18 on the declaration date"),
        pytest.param({"kyc_verification_date": date(2026, 11, 2)}, id="verified on the declaration day"),
        pytest.param({"kyc_verification_date": AS_OF}, id="verified today"),
        pytest.param({"dob": date(2026, 11, 1), "kyc_type": "05"}, id="minor declared the day after birth"),
        pytest.param({"differently_abled_flag": None}, id="flag missing counts as false"),
        pytest.param({"impairment_percentage": 0}, id="zero percentage when not differently abled"),
        pytest.param({**DISABLED_UDID, "impairment_percentage": 0}, id="percentage 0"),
        pytest.param({**DISABLED_UDID, "impairment_percentage": 100}, id="percentage 100"),
        pytest.param({"applicant_rel_first_name": "O'BRIEN"}, id="apostrophe in relative's name"),
        pytest.param({"applicant_name_title": "DR", "gender": "F"}, id="doctor of any gender"),
        pytest.param({"applicant_name_title": "MISS", "gender": "F"}, id="miss"),
        pytest.param({"gender": "T"}, id="transgender applicant titled Mr"),
        pytest.param({"poa_document": "01", "poa_document_number": "1234"}, id="aadhaar last 4"),
        pytest.param({"poa_document": "09", "poa_document_number": "0007"}, id="e-KYC last 4"),
        pytest.param({"poa_document": "10", "poa_document_number": "9876"}, id="offline aadhaar last 4"),
        pytest.param({"poa_document": "03", "poa_document_number": "MH1220110012345"}, id="licence"),
        pytest.param({"poa_document": "03", "poa_document_number": "D" * 20}, id="licence of 20"),
        pytest.param({"poa_document": "04", "poa_document_number": "ABC1234567"}, id="voter ID"),
        pytest.param({"poa_document": "05", "poa_document_number": "MH-01-002-003-004/56"}, id="NREGA"),
        pytest.param({"poa_document": "05", "poa_document_number": "N" * 40}, id="NREGA of 40"),
        pytest.param({"poa_document": "08", "poa_document_number": "NPR/2020/12345"}, id="NPR"),
        pytest.param({"poa_country": "GB", "poa_pin_code": "SW1A 1AA"}, id="foreign postal code"),
        pytest.param({"poa_country": "US", "poa_pin_code": ""}, id="no postal code abroad"),
        pytest.param({"current_country": "AE", "current_pin_code": ""}, id="current address abroad"),
        pytest.param({"mobile_isd": "971", "mobile_number": "501234567"}, id="mobile abroad"),
        pytest.param({"mobile_isd": "", "mobile_number": ""}, id="no mobile"),
        pytest.param({"poa_address_line_1": "A" * 55}, id="address line of 55"),
        pytest.param({"kyc_verifier_name": "A" * 150}, id="verifier name of 150"),
        pytest.param({"kyc_ref_no": "R" * 50}, id="reference of 50"),
        pytest.param({"kyc_ref_no": "branch_01/2026-7"}, id="reference with allowed symbols"),
        pytest.param({"poa_address_line_1": f"Plot {AADHAAR_BAD_CHECKSUM}"}, id="12 digits failing Verhoeff"),
        pytest.param({"kyc_declaration_place": "Navi Mumbai"}, id="place of two words"),
    ],
)
def test_valid_variations_have_no_errors(changes: dict[str, Any]) -> None:
    assert errors(check(valid_record() | changes)) == []


def test_impairment_percentage_may_be_blank_for_a_draft_even_when_differently_abled() -> None:
    record = valid_record() | {"differently_abled_flag": True}
    assert check(record, complete=False) == []


# -- Aadhaar ----------------------------------------------------------------------------------------------


def test_fake_aadhaar_helper_builds_verhoeff_valid_numbers() -> None:
    assert verhoeff_digit("236") == "3"  # the textbook Verhoeff example
    assert looks_like_aadhaar(AADHAAR)
    assert not looks_like_aadhaar(AADHAAR_BAD_CHECKSUM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (AADHAAR, True),
        (f"{AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}", True),
        (f"{AADHAAR[:4]}-{AADHAAR[4:8]}-{AADHAAR[8:]}", True),
        (f"  {AADHAAR}  ", True),
        (AADHAAR_BAD_CHECKSUM, False),
        ("0" + fake_aadhaar("1234567890")[1:], False),
        (fake_aadhaar("1234567890"), False),  # 11 digits
        (f"{AADHAAR[:4]} {AADHAAR[4:8]}-{AADHAAR[8:]}", False),  # mixed separators
        (f"{AADHAAR[:4]}  {AADHAAR[4:8]}  {AADHAAR[8:]}", False),
        (AADHAAR + "1", False),
        ("", False),
        ("ABCD EFGH IJKL", False),
    ],
)
def test_looks_like_aadhaar(text: str, expected: bool) -> None:
    assert looks_like_aadhaar(text) is expected


@pytest.mark.parametrize("spelling", ["plain", "spaced", "hyphenated"])
@pytest.mark.parametrize("document", ["01", "02", "04", "09", "10"])
def test_full_aadhaar_refused_as_document_number_whatever_the_type(document: str, spelling: str) -> None:
    number = {
        "plain": AADHAAR,
        "spaced": f"{AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}",
        "hyphenated": f"{AADHAAR[:4]}-{AADHAAR[4:8]}-{AADHAAR[8:]}",
    }[spelling]
    record = valid_record() | {"poa_document": document, "poa_document_number": number}
    for complete in (True, False):
        assert errors(check(record, complete=complete)) == [Problem("poa_document_number", AADHAAR_MESSAGE)]


def test_twelve_digits_for_an_aadhaar_type_get_the_aadhaar_message_even_with_a_bad_checksum() -> None:
    record = valid_record() | {"poa_document": "01", "poa_document_number": AADHAAR_BAD_CHECKSUM}
    assert errors(check(record)) == [Problem("poa_document_number", AADHAAR_MESSAGE)]


@pytest.mark.parametrize(
    "field",
    [
        "kyc_ref_no",
        "poa_address_line_1",
        "current_address_line_1",
        "poa_vtc",
        "kyc_verifier_name",
        "kyc_verifier_designation",
        "kyc_verifier_branch",
        "kyc_verifier_employee_code",
        "mobile_number",
    ],
)
def test_full_aadhaar_refused_inside_free_text(field: str) -> None:
    record = valid_record() | {field: f"UID {AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]} noted"}
    if field in ("kyc_ref_no", "mobile_number"):
        record[field] = AADHAAR
    # Not the proof of address number: "enter the last 4 digits" would make no sense here.
    message = AADHAAR_IN_TEXT_MESSAGE.format(label=FIELD_LABELS[field])
    for complete in (True, False):
        assert errors(check(record, complete=complete)) == [Problem(field, message)]


def test_aadhaar_scan_ignores_longer_digit_runs() -> None:
    record = valid_record() | {"poa_address_line_1": f"Survey 9{AADHAAR}"}
    assert errors(check(record)) == []


# -- drafts ---------------------------------------------------------------------------------------------


def test_empty_draft_has_no_problems() -> None:
    assert check({}, complete=False) == []


def test_draft_with_blank_required_fields_has_no_problems() -> None:
    record = dict.fromkeys(FIELDS, "") | {
        "dob": None,
        "kyc_declaration_date": None,
        "kyc_verification_date": None,
        "differently_abled_flag": False,
        "impairment_percentage": None,
        "kyc_ref_no": "BR01-DRAFT",
    }
    assert check(record, complete=False) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pan": "ABCDE1234F"}, "pan"),
        ({"applicant_first_name": "R4VI"}, "applicant_first_name"),
        ({"gender": "X"}, "gender"),
        ({"dob": date(2027, 1, 1)}, "dob"),
        ({"udid_number": "MH123"}, "udid_number"),
        ({"impairment_percentage": 120}, "impairment_percentage"),
        ({"poa_document_number": "123"}, "poa_document_number"),
        ({"poa_pin_code": "0400001"}, "poa_pin_code"),
        ({"poa_state": "ZZ"}, "poa_state"),
        ({"current_country": "IN", "current_pin_code": "12"}, "current_pin_code"),
        ({"current_country": "GB", "current_pin_code": "SW1A 1AA 12"}, "current_pin_code"),
        ({"mobile_isd": "+91"}, "mobile_isd"),
        ({"mobile_number": "12345"}, "mobile_number"),
        ({"kyc_declaration_place": "Mumbai|Fort"}, "kyc_declaration_place"),
        ({"kyc_type": "02"}, "kyc_type"),
        ({"kyc_verifier_branch": LONG}, "kyc_verifier_branch"),
    ],
)
def test_draft_rejects_malformed_filled_values(changes: dict[str, Any], field: str) -> None:
    draft = {"kyc_ref_no": "BR01-DRAFT", "poa_document": "02", "poa_country": "IN", "mobile_isd": "91"}
    assert [problem.field for problem in check(draft | changes, complete=False)] == [field]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"dob": date(2026, 11, 5)}, id="dob after declaration"),
        pytest.param({"dob": date(2015, 1, 1)}, id="under 18"),
        pytest.param({"kyc_verification_date": date(2026, 11, 1)}, id="verified before declared"),
        pytest.param(current_same_as_poa(current_vtc="Pune"), id="current address kept with Y"),
        pytest.param({"mobile_number": ""}, id="isd without mobile"),
        pytest.param({"impairment_type": "01"}, id="impairment without flag"),
        pytest.param({"applicant_name_title": "MRS"}, id="title not matching gender"),
    ],
)
def test_draft_skips_cross_field_rules(changes: dict[str, Any]) -> None:
    assert check(valid_record() | changes, complete=False) == []


# -- warnings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"applicant_name_title": "MRS"}, "applicant_name_title"),
        ({"applicant_name_title": "MS"}, "applicant_name_title"),
        ({"applicant_name_title": "MR", "gender": "F"}, "applicant_name_title"),
        ({"applicant_rel_details_flag": "SPOUSE"}, "applicant_rel_details_flag"),
    ],
)
def test_pack_conventions_are_warnings_not_errors(changes: dict[str, Any], field: str) -> None:
    problems = check(valid_record() | changes)
    assert errors(problems) == []
    assert [(problem.field, problem.severity) for problem in warnings(problems)] == [(field, "warning")]
    assert not warnings(problems)[0].is_error


def test_married_woman_with_spouse_details_has_no_warning() -> None:
    record = valid_record() | {
        "applicant_name_title": "MRS",
        "gender": "F",
        "applicant_rel_details_flag": "SPOUSE",
    }
    assert check(record) == []


# -- normalise_record ---------------------------------------------------------------------------------------


def test_normalise_upper_cases_pan_and_trims_strings() -> None:
    record = valid_record() | {"pan": "  abcpe1234f ", "poa_vtc": "  Mumbai  ", "kyc_ref_no": " BR01-9 "}
    normalised = normalise_record(record)
    assert normalised["pan"] == "ABCPE1234F"
    assert normalised["poa_vtc"] == "Mumbai"
    assert normalised["kyc_ref_no"] == "BR01-9"


def test_normalise_returns_a_new_dict_and_keeps_other_values() -> None:
    record = valid_record() | {"pan": "abcpe1234f", "extra": " kept "}
    normalised = normalise_record(record)
    assert normalised is not record
    assert record["pan"] == "abcpe1234f"
    assert normalised["extra"] == " kept "
    assert normalised["dob"] == record["dob"]
    assert normalised["differently_abled_flag"] is False
    assert normalised["impairment_percentage"] is None


def test_normalise_tidies_names_codes_and_numbers() -> None:
    messy = {
        "applicant_name_title": "Mr",
        "applicant_first_name": "  ravi   kumar ",
        "applicant_rel_first_name": "suresh\td'souza",
        "applicant_rel_details_flag": "father",
        "gender": "m",
        "udid_number": "mh0120221985123456",
        "poa_document": "3",
        "poa_document_number": " mh-12 2011 0012345 ",
        "poa_state": "mh",
        "poa_country": "in",
        "poa_pin_code": "400 001",
        "current_address_same_as_poa_address": "y",
        "mobile_isd": "+91",
        "mobile_number": "98765-43210",
        "kyc_declaration_place": " Navi   Mumbai ",
        "kyc_type": "1",
        "kyc_type_of_document_submitted": "1",
        "impairment_type": "7",
        "kyc_verifier_name": None,
    }
    assert normalise_record(messy) == {
        "applicant_name_title": "MR",
        "applicant_first_name": "RAVI KUMAR",
        "applicant_rel_first_name": "SURESH D'SOUZA",
        "applicant_rel_details_flag": "FATHER",
        "gender": "M",
        "udid_number": "MH0120221985123456",
        "poa_document": "03",
        "poa_document_number": "MH1220110012345",
        "poa_state": "MH",
        "poa_country": "IN",
        "poa_pin_code": "400001",
        "current_address_same_as_poa_address": "Y",
        "mobile_isd": "91",
        "mobile_number": "9876543210",
        "kyc_declaration_place": "Navi Mumbai",
        "kyc_type": "01",
        "kyc_type_of_document_submitted": "01",
        "impairment_type": "07",
        "kyc_verifier_name": "",
    }


def test_normalise_never_masks_or_shortens_an_aadhaar_number() -> None:
    record = valid_record() | {"poa_document": "01", "poa_document_number": f" {AADHAAR} "}
    normalised = normalise_record(record)
    assert normalised["poa_document_number"] == AADHAAR
    assert errors(check(normalised)) == [Problem("poa_document_number", AADHAAR_MESSAGE)]


def test_normalised_messy_entry_validates() -> None:
    record = valid_record() | {
        "pan": "abcpe1234f ",
        "applicant_name_title": "mr",
        "applicant_first_name": " ravi ",
        "poa_document_number": "k1234567",
        "mobile_isd": "+91",
        "mobile_number": "98765 43210",
    }
    assert errors(check(record))
    assert check(normalise_record(record)) == []


# -- contract details ---------------------------------------------------------------------------------------


def test_problem_is_frozen_and_defaults_to_error() -> None:
    problem = Problem("pan", PAN_MESSAGE)
    assert problem.severity == "error"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.message = "changed"  # type: ignore[misc]


def test_code_lists_are_usable_as_choices() -> None:
    for choices in (
        codes.NAME_TITLES,
        codes.REL_FLAGS,
        codes.GENDERS,
        codes.POA_DOCUMENTS,
        codes.DOCUMENT_SUBMITTED_TYPES,
        codes.KYC_TYPES,
        codes.IMPAIRMENT_TYPES,
        codes.YES_NO,
        codes.STATES,
        codes.COUNTRIES,
    ):
        assert choices
        assert all(isinstance(code, str) and isinstance(label, str) and label for code, label in choices)
        assert len({code for code, _ in choices}) == len(choices)
    assert codes.COUNTRIES[0] == ("IN", "India")
    assert dict(codes.STATES)["MH"] == "Maharashtra"
    assert codes.AADHAAR_POA_CODES.issubset(code for code, _ in codes.POA_DOCUMENTS)
    labels = [label.casefold() for _, label in codes.STATES]
    assert labels == sorted(labels)


# -- the code book --------------------------------------------------------------------------------------

PIN_BOOK = codes.CodeBook(
    {**codes.STATIC_LISTS, "kyc_types": (("01", "Normal"), ("04", "OTP-based e-KYC"))},
    inactive={"kyc_types": (("05", "Minor"),), "states": (("CT", "Chhattisgarh (old code)"),)},
    pins={
        "400001": codes.PinEntry(frozenset({"MH"}), "MUMBAI"),
        "411005": codes.PinEntry(frozenset({"MH"}), "PUNE"),
        "110025": codes.PinEntry(frozenset({"DL", "UP"}), "SOUTH / BUDAUN"),
    },
)


def test_a_pin_in_another_state_names_the_field_and_the_state_it_belongs_to() -> None:
    problems = validate_record(valid_record() | {"poa_state": "DL"}, today=AS_OF, codes=PIN_BOOK)
    assert [(p.field, p.severity) for p in problems] == [("poa_pin_code", "error")]
    assert problems[0].message == (
        "PIN code belongs to Maharashtra (MH), not to Delhi (DL): check the PIN code or the state"
    )


def test_the_current_address_pin_is_checked_against_its_own_state() -> None:
    problems = validate_record(valid_record() | {"current_state": "KA"}, today=AS_OF, codes=PIN_BOOK)
    assert [p.field for p in problems] == ["current_pin_code"]
    assert problems[0].message.startswith(
        "Current address PIN code belongs to Maharashtra (MH), not to Karnataka"
    )
    assert "411005" not in problems[0].message  # the customer's PIN is personal data: never echoed


def test_a_pin_on_a_state_boundary_agrees_with_either_state() -> None:
    for state in ("DL", "UP"):
        record = valid_record() | {"poa_state": state, "poa_pin_code": "110025"}
        assert validate_record(record, today=AS_OF, codes=PIN_BOOK) == []
    record = valid_record() | {"poa_state": "MH", "poa_pin_code": "110025"}
    (problem,) = validate_record(record, today=AS_OF, codes=PIN_BOOK)
    assert "belongs to Delhi (DL) or Uttar Pradesh (UP)" in problem.message


def test_a_pin_missing_from_the_master_is_an_error() -> None:
    problems = validate_record(valid_record() | {"poa_pin_code": "999999"}, today=AS_OF, codes=PIN_BOOK)
    assert [(p.field, p.message) for p in problems] == [
        ("poa_pin_code", "PIN code is not in the PIN master: check the PIN code")
    ]


def test_an_empty_pin_master_warns_and_does_not_block() -> None:
    empty = codes.CodeBook(codes.STATIC_LISTS, pins={})
    problems = validate_record(valid_record(), today=AS_OF, codes=empty)
    assert [(p.field, p.severity) for p in problems] == [
        ("poa_pin_code", "warning"),
        ("current_pin_code", "warning"),
    ]
    assert "refresh_pin_master" in problems[0].message
    assert blocking_problems(problems) == []


def test_without_a_pin_master_pins_are_checked_for_shape_only() -> None:
    assert validate_record(valid_record() | {"poa_pin_code": "999999"}, today=AS_OF) == []


def test_foreign_postal_codes_are_not_looked_up() -> None:
    record = valid_record() | {"poa_country": "GB", "poa_pin_code": "SW1A 1AA"}
    assert validate_record(record, today=AS_OF, codes=PIN_BOOK) == []


def test_an_inactive_code_is_refused_with_its_label_and_an_unknown_one_lists_the_active_codes() -> None:
    problems = validate_record(valid_record() | {"kyc_type": "05"}, today=AS_OF, codes=PIN_BOOK)
    assert [p.message for p in problems if p.is_error] == [
        "KYC type 05 (Minor) is not in use; choose another"
    ]
    problems = validate_record(valid_record() | {"kyc_type": "07"}, today=AS_OF, codes=PIN_BOOK)
    assert [p.message for p in problems] == ["KYC type must be one of: 01 Normal, 04 OTP-based e-KYC"]


def test_the_code_book_offers_active_codes_and_keeps_a_records_inactive_one() -> None:
    assert ("CT", "Chhattisgarh (old code)") not in PIN_BOOK.field_choices("poa_state")
    kept = PIN_BOOK.field_choices("poa_state", keep="CT")
    assert kept[-1] == ("CT", "Chhattisgarh (old code) (no longer in use)")
    assert PIN_BOOK.label("states", "CT") == "Chhattisgarh (old code)"
    assert PIN_BOOK.field_choices("poa_state", keep="MH") == PIN_BOOK.choices("states")


def test_the_code_book_is_immutable() -> None:
    with pytest.raises(AttributeError):
        PIN_BOOK.pins = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        PIN_BOOK.pins["999999"] = codes.PinEntry(frozenset(), "")  # type: ignore[index]


def test_without_a_code_book_validation_uses_the_static_seed_lists() -> None:
    assert codes.STATIC_CODE_BOOK.codes("kyc_types") == {"01", "04", "05"}
    assert check(valid_record() | {"kyc_type": "05", "dob": date(2012, 1, 1)}) == []


# -- Aadhaar in any script ------------------------------------------------------------------------------

DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def test_a_full_aadhaar_number_in_devanagari_digits_is_refused_too() -> None:
    spaced = f"{AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}".translate(DEVANAGARI)
    problems = check(valid_record() | {"poa_address_line_1": f"Aadhaar {spaced}"})
    in_text = AADHAAR_IN_TEXT_MESSAGE.format(label="Address line 1")
    assert [(p.field, p.message) for p in problems] == [("poa_address_line_1", in_text)]
    problems = check(
        valid_record() | {"poa_document": "01", "poa_document_number": AADHAAR.translate(DEVANAGARI)}
    )
    assert [(p.field, p.message) for p in problems] == [("poa_document_number", AADHAAR_MESSAGE)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poa_pin_code", "४००००१"),
        ("mobile_number", "९८७६५४३२१०"),
        ("poa_document_number", "K१२३४५६७"),
    ],
)
def test_stored_number_formats_take_ascii_digits_only(field: str, value: str) -> None:
    assert [p.field for p in check(valid_record() | {field: value})] == [field]


def test_a_full_aadhaar_number_in_free_text_gets_a_message_for_free_text() -> None:
    record = valid_record() | {"kyc_verifier_employee_code": AADHAAR}
    [problem] = errors(check(record))
    assert problem.message.startswith("Verifier employee code looks like it contains an Aadhaar number")
    assert "last 4 digits of the Aadhaar" not in problem.message


def test_clean_record_blanks_what_the_flags_exclude_after_normalising() -> None:
    data = {
        **valid_record(),
        "current_address_same_as_poa_address": "Y",
        "current_vtc": "Pune",
        "differently_abled_flag": False,
        "impairment_type": "01",
        "udid_number": "MH1234567890123456",
        "mobile_number": "",
        "mobile_isd": "91",
        "pan": " abcpk1234l ",
    }
    cleaned, problems = clean_record(data)
    assert problems == []
    assert cleaned["pan"] == "ABCPK1234L"
    assert cleaned["current_vtc"] == ""
    assert (cleaned["impairment_type"], cleaned["udid_number"], cleaned["impairment_percentage"]) == (
        "",
        "",
        None,
    )
    assert cleaned["mobile_isd"] == ""


def test_clean_record_resolves_before_it_blanks() -> None:
    seen: list[str] = []

    def resolve(cleaned: dict[str, Any]) -> list[Problem]:
        seen.append(cleaned["current_address_same_as_poa_address"])
        cleaned["current_address_same_as_poa_address"] = "Y"  # as a label "Yes" becomes its code
        return [Problem("gender", "a note from the resolver")]

    cleaned, problems = clean_record(
        {**valid_record(), "current_address_same_as_poa_address": "Yes", "current_vtc": "Pune"},
        resolve=resolve,
    )
    assert seen == ["YES"]  # normalised (codes are upper-cased) before the resolver runs
    assert cleaned["current_vtc"] == ""
    assert problems == [Problem("gender", "a note from the resolver")]
