"""Which CKYC rules block by default: a breach a registry or a strict intake refuses is an error, wherever
the record comes from (the form, the services, the import, the API); a style rule is a warning, blocking only
where the institution's warnings block. The README's rules table lists the same split."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from records.validation import Problem, blocking_problems, validate_record

from .factories import AS_OF, differently_abled_record, valid_record

DECLARED = valid_record()["kyc_declaration_date"]
DAY_BEFORE = DECLARED - timedelta(days=1)

# (rule, what breaks it, the field it names): each was a warning and is an error now.
ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("Indian mobile starts 6-9", {"mobile_number": "5876543210"}, "mobile_number"),
    ("Indian mobile starts 6-9 (0)", {"mobile_number": "0876543210"}, "mobile_number"),
    ("verification on or after declaration", {"kyc_verification_date": DAY_BEFORE}, "kyc_verification_date"),
    ("ISD with mobile", {"mobile_isd": ""}, "mobile_isd"),
    ("mobile with ISD", {"mobile_number": ""}, "mobile_number"),
    ("age 18 unless Minor", {"dob": date(2010, 1, 1)}, "dob"),
    ("age 18 unless Minor (OTP e-KYC)", {"dob": date(2010, 1, 1), "kyc_type": "04"}, "dob"),
    ("Minor only under 18", {"kyc_type": "05"}, "kyc_type"),
    ("UDID when differently abled", {**differently_abled_record(), "udid_number": ""}, "udid_number"),
    ("passport number format", {"poa_document_number": "KL1234567"}, "poa_document_number"),
    ("voter ID format", {"poa_document": "04", "poa_document_number": "AB1234567"}, "poa_document_number"),
    ("driving licence format", {"poa_document": "03", "poa_document_number": "MH 12"}, "poa_document_number"),
    ("NREGA format", {"poa_document": "05", "poa_document_number": "MH 01/002"}, "poa_document_number"),
    ("NPR format", {"poa_document": "08", "poa_document_number": "NPR 7"}, "poa_document_number"),
    ("declaration place letters", {"kyc_declaration_place": "Navi-Mumbai"}, "kyc_declaration_place"),
    ("address characters", {"poa_address_line_1": "12 Marine Drive @ Flat 4B"}, "poa_address_line_1"),
    ("address in English letters", {"current_address_line_1": "7 एफसी रोड"}, "current_address_line_1"),
]  # fmt: skip

# Style rules: shown, blocking only where the institution's warnings block.
WARNINGS: list[tuple[str, dict[str, Any], str]] = [
    ("title agrees with gender", {"applicant_name_title": "MR", "gender": "F"}, "applicant_name_title"),
    ("spouse details with Mrs", {"applicant_rel_details_flag": "SPOUSE"}, "applicant_rel_details_flag"),
    ("names in capitals", {"applicant_first_name": "Ravi"}, "applicant_first_name"),
    ("values trimmed", {"kyc_verifier_branch": " Fort, Mumbai"}, "kyc_verifier_branch"),
    ("disability details only when differently abled", {"impairment_type": "01"}, "impairment_type"),
]


def check(changes: dict[str, Any]) -> list[Problem]:
    return validate_record(valid_record() | changes, complete=True, today=AS_OF)


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_a_rule_a_strict_intake_enforces_is_an_error_that_blocks_by_default(
    changes: dict[str, Any], field: str
) -> None:
    problems = check(changes)
    assert [(p.field, p.severity) for p in problems] == [(field, "error")], problems
    assert blocking_problems(problems, warnings_block=False) == problems


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS])
def test_a_style_rule_stays_a_warning_that_blocks_only_when_the_institution_says_so(
    changes: dict[str, Any], field: str
) -> None:
    problems = check(changes)
    assert [(p.field, p.severity) for p in problems] == [(field, "warning")], problems
    assert blocking_problems(problems, warnings_block=False) == []
    assert blocking_problems(problems, warnings_block=True) == problems


def test_the_two_new_errors_say_what_is_expected() -> None:
    (mobile,) = check({"mobile_number": "5876543210"})
    assert mobile.message == "An Indian mobile number (ISD code 91) must start with 6, 7, 8 or 9"
    (verified,) = check({"kyc_verification_date": DECLARED - timedelta(days=1)})
    assert verified.message == "Verification date cannot be before the declaration date"


def test_a_foreign_mobile_may_start_with_any_digit() -> None:
    assert check({"mobile_isd": "44", "mobile_number": "5876543210"}) == []


def test_verification_on_the_declaration_day_and_a_minor_on_the_minor_type_pass() -> None:
    assert check({"kyc_verification_date": DECLARED}) == []
    assert check({"dob": date(2010, 1, 1), "kyc_type": "05"}) == []


def test_the_readme_lists_every_rule_of_the_split_with_its_severity() -> None:
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    table = readme[readme.index("| Rule | Severity |") :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    severities = [re.split(r"\s*\|\s*", row.strip("| "))[1] for row in rows]
    assert (severities.count("error"), severities.count("warning")) == (9, 6), table
    for words in ("6, 7, 8 or 9", "before the declaration", "ISD", "UDID", "18", "title agrees", "Mrs"):
        assert words in table, words
