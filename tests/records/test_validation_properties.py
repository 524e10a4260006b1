"""Property tests of the CKYC rules (hypothesis): generated valid records pass; each single mutation that
breaks one rule is caught, on the field it names, as an error (or as a warning for a style rule).

Pure: a small hand-made code book stands in for the PIN master, no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codelists.codes import STATIC_LISTS, CodeBook, PinEntry
from records.validation import _MAX_LENGTHS, contains_aadhaar, normalise_record, validate_record

from .factories import AS_OF
from .test_validation import fake_aadhaar

PINS = {
    "400001": PinEntry(frozenset({"MH"}), "MUMBAI"),
    "411005": PinEntry(frozenset({"MH"}), "PUNE"),
    "110001": PinEntry(frozenset({"DL"}), "NEW DELHI"),
    "560001": PinEntry(frozenset({"KA"}), "BENGALURU"),
    "600001": PinEntry(frozenset({"TN"}), "CHENNAI"),
    "682001": PinEntry(frozenset({"KL"}), "ERNAKULAM"),
}
BOOK = CodeBook(STATIC_LISTS, pins=PINS)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

# -- valid records ---------------------------------------------------------------------------------------

WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=9)


def words(max_length: int, *, apostrophes: bool = False) -> st.SearchStrategy[str]:
    word = WORD
    if apostrophes:
        word = st.one_of(WORD, st.tuples(WORD, WORD).map("'".join))
    return st.lists(word, min_size=1, max_size=4).map(" ".join).filter(lambda s: len(s) <= max_length)


ADDRESS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,./()'&#:-"


def free_text(max_length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=ADDRESS_ALPHABET, min_size=1, max_size=max_length).filter(
        lambda s: s == s.strip() and s != "" and not contains_aadhaar(s)
    )


def rx(pattern: str) -> st.SearchStrategy[str]:
    """Strings matching the pattern, with ASCII digits (validation refuses other scripts' digits)."""
    return st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True)


def matching(pattern: str) -> st.SearchStrategy[str]:
    """Strings of the pattern that do not happen to hold a Verhoeff-valid 12-digit run."""
    return rx(pattern).filter(lambda s: not contains_aadhaar(s))


POA_NUMBERS: dict[str, st.SearchStrategy[str]] = {
    "01": matching(r"\d{4}"),
    "09": matching(r"\d{4}"),
    "10": matching(r"\d{4}"),
    "02": matching(r"[A-Z]\d{7}"),
    "03": matching(r"[A-Z0-9]{1,20}"),
    "04": matching(r"[A-Z]{3}\d{7}"),
    "05": matching(r"[A-Z0-9/-]{1,40}"),
    "08": matching(r"[A-Z0-9/-]{1,20}"),
}


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@st.composite
def address(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        pin = draw(st.sampled_from(sorted(PINS)))
        state = next(iter(PINS[pin].states))
        return {
            "line": draw(free_text(55)),
            "vtc": draw(free_text(50)),
            "state": state,
            "country": "IN",
            "pin": pin,
        }
    return {
        "line": draw(free_text(55)),
        "vtc": draw(free_text(50)),
        "state": draw(st.sampled_from([code for code, _ in STATIC_LISTS["states"]])),
        "country": draw(st.sampled_from(["GB", "AE", "US", "SG"])),
        "pin": draw(rx(r"[A-Z0-9]{1,4}( [A-Z0-9]{1,4})?")),
    }


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    declared = draw(st.dates(min_value=date(2015, 1, 1), max_value=AS_OF))
    verified = draw(st.dates(min_value=declared, max_value=AS_OF))
    adult_before = years_before(declared, 18)
    dob = draw(st.dates(min_value=date(1920, 1, 1), max_value=adult_before))
    gender = draw(st.sampled_from(["M", "F", "T"]))
    title = draw(
        st.sampled_from(
            {"M": ["MR", "DR"], "F": ["MRS", "MS", "MISS", "DR"], "T": ["MR", "MS", "DR"]}[gender]
        )
    )
    relation = "SPOUSE" if title == "MRS" and draw(st.booleans()) else "FATHER"
    document = draw(st.sampled_from(sorted(POA_NUMBERS)))
    poa = draw(address())
    same = draw(st.sampled_from(["Y", "N"]))
    current = (
        draw(address()) if same == "N" else dict.fromkeys(("line", "vtc", "state", "country", "pin"), "")
    )
    disabled = draw(st.booleans())
    isd, mobile = draw(
        st.one_of(
            st.tuples(st.just("91"), rx(r"[6-9]\d{9}")),
            st.tuples(st.sampled_from(["44", "971", "1"]), matching(r"\d{6,15}")),
            st.just(("", "")),
        )
    )
    return {
        "kyc_ref_no": draw(matching(r"[A-Za-z0-9_/-]{1,50}")),
        "pan": draw(rx(r"[A-Z]{3}P[A-Z]\d{4}[A-Z]")),
        "applicant_name_title": title,
        "applicant_first_name": draw(words(50)),
        "applicant_middle_name": draw(st.one_of(st.just(""), words(50))),
        "applicant_rel_details_flag": relation,
        "applicant_rel_name_title": draw(st.sampled_from(["MR", "MRS", "DR"])),
        "applicant_rel_first_name": draw(words(50, apostrophes=True)),
        "applicant_rel_middle_name": draw(st.one_of(st.just(""), words(50, apostrophes=True))),
        "gender": gender,
        "dob": dob,
        "differently_abled_flag": disabled,
        "impairment_type": draw(st.sampled_from(["01", "02", "07", "99"])) if disabled else "",
        "impairment_percentage": draw(st.integers(0, 100)) if disabled else None,
        "udid_number": draw(rx(r"[A-Z]{2}\d{16}")) if disabled else "",
        "poa_document": document,
        "poa_document_number": draw(POA_NUMBERS[document]),
        "poa_address_line_1": poa["line"],
        "poa_vtc": poa["vtc"],
        "poa_state": poa["state"],
        "poa_country": poa["country"],
        "poa_pin_code": poa["pin"],
        "current_address_same_as_poa_address": same,
        "current_address_line_1": current["line"],
        "current_vtc": current["vtc"],
        "current_state": current["state"],
        "current_country": current["country"],
        "current_pin_code": current["pin"],
        "mobile_isd": isd,
        "mobile_number": mobile,
        "kyc_declaration_date": declared,
        "kyc_declaration_place": draw(words(50)),
        "kyc_verification_date": verified,
        "kyc_type": draw(st.sampled_from(["01", "04"])),
        "kyc_verifier_name": draw(free_text(150)),
        "kyc_verifier_designation": draw(free_text(50)),
        "kyc_verifier_branch": draw(free_text(50)),
        "kyc_verifier_employee_code": draw(free_text(50)),
        "kyc_type_of_document_submitted": draw(st.sampled_from(["01", "02", "03", "04", "05", "06"])),
    }


def check(record: dict[str, Any], *, codes: CodeBook | None = BOOK) -> list[Any]:
    return validate_record(record, complete=True, today=AS_OF, codes=codes)


@PROPERTY_SETTINGS
@given(valid_records())
def test_generated_valid_records_have_no_problems(record: dict[str, Any]) -> None:
    assert check(record) == []
    assert check(record, codes=None) == []  # the static seed lists accept them too


@PROPERTY_SETTINGS
@given(valid_records())
def test_normalising_a_valid_record_changes_nothing(record: dict[str, Any]) -> None:
    assert normalise_record(record) == record


# -- one mutation, one error on its field ----------------------------------------------------------------

Mutation = Callable[[dict[str, Any], st.DrawFn], dict[str, Any]]
FREE_TEXT_FIELDS = (
    "poa_address_line_1",
    "poa_vtc",
    "kyc_verifier_name",
    "kyc_verifier_designation",
    "kyc_verifier_branch",
    "kyc_verifier_employee_code",
)


def _pan_not_individual(record: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    letter = draw(st.sampled_from("ABCFGHJLT"))
    return {"pan": record["pan"][:3] + letter + record["pan"][4:]}


def _pin_elsewhere(record: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    pin = draw(st.sampled_from(sorted(PINS)))
    other = draw(st.sampled_from(sorted({"MH", "DL", "KA", "TN", "KL", "GA"} - PINS[pin].states)))
    return {"poa_country": "IN", "poa_pin_code": pin, "poa_state": other}


def _aadhaar_in_text(record: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FREE_TEXT_FIELDS))
    digits = fake_aadhaar(draw(rx(r"[2-9]\d{10}")))
    spelling = draw(st.sampled_from([digits, f"{digits[:4]} {digits[4:8]} {digits[8:]}"]))
    return {field: f"ID {spelling}"}


ERROR_MUTATIONS: list[tuple[str, Mutation]] = [
    ("kyc_ref_no", lambda r, d: {"kyc_ref_no": r["kyc_ref_no"][:20] + d(st.sampled_from(" #|@"))}),
    ("kyc_ref_no", lambda r, d: {"kyc_ref_no": ""}),
    ("pan", _pan_not_individual),
    ("pan", lambda r, d: {"pan": r["pan"].lower()}),
    ("pan", lambda r, d: {"pan": r["pan"][: d(st.integers(0, 9))]}),
    (
        "applicant_first_name",
        lambda r, d: {"applicant_first_name": r["applicant_first_name"] + d(st.sampled_from("0123456789.@"))},
    ),
    ("applicant_first_name", lambda r, d: {"applicant_first_name": "A" * d(st.integers(51, 80))}),
    (
        "applicant_name_title",
        lambda r, d: {"applicant_name_title": d(st.sampled_from(["SIR", "Mr", "LORD", "X"]))},
    ),
    ("gender", lambda r, d: {"gender": d(st.sampled_from(["X", "m", "MALE", "O"]))}),
    ("dob", lambda r, d: {"dob": AS_OF + timedelta(days=d(st.integers(1, 400)))}),
    ("dob", lambda r, d: {"dob": r["kyc_declaration_date"]}),
    (
        "poa_document",
        lambda r, d: {"poa_document": d(st.sampled_from(["11", "12", "13", "14", "15", "06", "S01"]))},
    ),
    ("poa_document_number", lambda r, d: {"poa_document": "01", "poa_document_number": fake_aadhaar()}),
    (
        "poa_document_number",
        lambda r, d: {
            "poa_document": d(st.sampled_from(["01", "09", "10"])),
            "poa_document_number": d(rx(r"\d{5,8}")),
        },
    ),
    ("poa_address_line_1", lambda r, d: {"poa_address_line_1": "A" * d(st.integers(56, 90))}),
    (
        "poa_address_line_1",
        lambda r, d: {
            "poa_address_line_1": r["poa_address_line_1"][:40] + d(st.sampled_from(["|", "\n", "\t"]))
        },
    ),
    ("poa_state", lambda r, d: {"poa_state": d(st.sampled_from(["ZZ", "XX", "Maharashtra", "IN"]))}),
    ("poa_country", lambda r, d: {"poa_country": d(st.sampled_from(["ZZ", "IND", "India"]))}),
    (
        "poa_pin_code",
        lambda r, d: {
            "poa_country": "IN",
            "poa_pin_code": d(rx(r"[1-9]\d{5}").filter(lambda p: p not in PINS)),
        },
    ),
    ("poa_pin_code", _pin_elsewhere),
    (
        "poa_pin_code",
        lambda r, d: {
            "poa_country": "IN",
            "poa_pin_code": d(rx(r"0\d{5}|[1-9]\d{4}|[1-9]\d{6}")),
        },
    ),
    (
        "mobile_number",
        lambda r, d: {
            "mobile_isd": "91",
            "mobile_number": d(rx(r"\d{1,9}|\d{11,14}")),
        },
    ),
    ("mobile_isd", lambda r, d: {"mobile_isd": d(st.sampled_from(["+91", "9101", "ab"]))}),
    (
        "kyc_declaration_date",
        lambda r, d: {"kyc_declaration_date": AS_OF + timedelta(days=d(st.integers(1, 30)))},
    ),
    ("kyc_type", lambda r, d: {"kyc_type": d(st.sampled_from(["02", "03", "99", ""]))}),
    ("kyc_verifier_name", lambda r, d: {"kyc_verifier_name": "A" * d(st.integers(151, 200))}),
    (
        "kyc_type_of_document_submitted",
        lambda r, d: {"kyc_type_of_document_submitted": d(st.sampled_from(["07", "00", "1A"]))},
    ),
    (
        "impairment_percentage",
        lambda r, d: {
            "differently_abled_flag": True,
            "impairment_type": "01",
            "udid_number": "MH0120221985123456",
            "impairment_percentage": d(st.integers(101, 999)),
        },
    ),
    # Rules that were warnings and are errors now: a strict intake refuses the record (README, "Rules").
    (
        "poa_document_number",
        lambda r, d: {
            "poa_document": "02",
            "poa_document_number": d(rx(r"[A-Z]{2}\d{6}|\d{8}")),
        },
    ),
    (
        "mobile_number",
        lambda r, d: {"mobile_isd": "91", "mobile_number": d(rx(r"[0-5]\d{9}"))},
    ),
    (
        "kyc_declaration_place",
        lambda r, d: {
            "kyc_declaration_place": r["kyc_declaration_place"][:40]
            + d(st.sampled_from(["1", "-EAST", ". X"]))
        },
    ),
    (
        "poa_address_line_1",
        lambda r, d: {
            "poa_address_line_1": r["poa_address_line_1"][:50] + d(st.sampled_from(["@", "*", "%", "!", "é"]))
        },
    ),
    (
        "dob",
        lambda r, d: {
            "kyc_type": "01",
            "dob": r["kyc_declaration_date"] - timedelta(days=d(st.integers(1, 365 * 17))),
        },
    ),
]


@PROPERTY_SETTINGS
@given(valid_records(), st.sampled_from(ERROR_MUTATIONS), st.data())
def test_each_broken_rule_gives_one_error_on_its_field(
    record: dict[str, Any], mutation: tuple[str, Mutation], data: st.DataObject
) -> None:
    field, mutate = mutation
    broken = record | mutate(record, data.draw)
    errors = [problem for problem in check(broken) if problem.is_error]
    assert [problem.field for problem in errors] == [field], errors
    assert errors[0].message


@PROPERTY_SETTINGS
@given(valid_records(), st.data())
def test_a_full_aadhaar_number_in_any_free_text_field_is_refused_on_that_field(
    record: dict[str, Any], data: st.DataObject
) -> None:
    changes = _aadhaar_in_text(record, data.draw)
    (field,) = changes
    errors = [problem for problem in check(record | changes) if problem.is_error]
    assert [(problem.field, "Aadhaar" in problem.message) for problem in errors] == [(field, True)]


# -- one mutation of a style rule, one warning on its field -----------------------------------------------

WARNING_MUTATIONS: list[tuple[str, Mutation]] = [
    (
        "applicant_first_name",
        lambda r, d: {"applicant_first_name": r["applicant_first_name"][:40].lower() + "a"},
    ),
    (
        "applicant_name_title",
        lambda r, d: {"applicant_name_title": "MRS", "gender": "M", "applicant_rel_details_flag": "FATHER"},
    ),
    ("kyc_verifier_name", lambda r, d: {"kyc_verifier_name": " " + r["kyc_verifier_name"][:100]}),
]


@PROPERTY_SETTINGS
@given(valid_records(), st.sampled_from(WARNING_MUTATIONS), st.data())
def test_each_style_rule_gives_one_warning_on_its_field(
    record: dict[str, Any], mutation: tuple[str, Mutation], data: st.DataObject
) -> None:
    field, mutate = mutation
    problems = check(record | mutate(record, data.draw))
    assert [problem.field for problem in problems if problem.is_error] == []
    assert [problem.field for problem in problems] == [field], problems


def test_the_derived_full_name_fits_cersai_158_characters() -> None:
    """CERSAI: prefix + names <= 158. KwikID has no last name, so the per-field limits guarantee it."""
    longest = 5 + 1 + _MAX_LENGTHS["applicant_first_name"] + 1 + _MAX_LENGTHS["applicant_middle_name"]
    assert longest <= 158
