"""CKYC record rules as pure functions: no Django, no database, no request.

``data`` is a flat mapping keyed by the KwikID API's own field names (see ``FIELDS``). Strings are ""
when blank and a missing key counts as blank. Validation does not normalise: callers run
``normalise_record`` first (forms in ``clean``, imports per row) and validate what they will store.

Two modes:
- ``complete=False`` (saving a draft): blanks are accepted, but every filled value must be well-formed
  (format, length, code list, date sanity). A full Aadhaar number is refused even in a draft.
- ``complete=True`` (submit, import, before batching): adds the required checks and the rules that
  relate fields to each other (date order, age, disability and current-address blanks, ISD with mobile).

Each field gets at most one error, so staff see the first thing to fix.

Severity follows what the registry does with a breach: a rule whose breach CERSAI, KwikID or a strict
intake refuses is an error (CERSAI's and KwikID's own rules, the national numbering plan, UIDAI's storage
rule, and the CERSAI-tagged rules of the V1.3 bulk validation rule book, RB: document number formats, ISD
with mobile, age and the minor KYC type, UDID when differently abled, declaration place and address
characters, verification on or after declaration). A style rule is a warning, shown but not blocking unless
the institution makes warnings block (``blocking_problems``): RB's "pack conventions" (title and gender,
spouse details with Mrs) and the portal's tidy-ups (capitals in names, trimmed values, disability details
the payload leaves out anyway). Code-list membership is an error whatever the list's source, because the
lists are the admins' to edit (codelists app). The README lists every rule that is a warning or was one,
with its reason.

This runs on 100,000-row imports: regexes are compiled once, code lists are sets in the CodeBook, and
messages are built only for the values that fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from codelists.codes import (
    AADHAAR_POA_CODES,
    CODED_LISTS,
    COUNTRIES_LIST,
    DOCUMENT_SUBMITTED_TYPES_LIST,
    GENDERS_LIST,
    IMPAIRMENT_TYPES_LIST,
    KYC_TYPES_LIST,
    NAME_TITLES_LIST,
    POA_DOCUMENTS_LIST,
    RELATION_FLAGS_LIST,
    STATES_LIST,
    STATIC_CODE_BOOK,
    YES_NO_LIST,
    CodeBook,
)
from kwikid.fields import (
    CURRENT_ADDRESS_FIELDS,
    DATE_FIELDS,
    FIELD_LABELS,
    FIELDS,
    MAX_LENGTHS,
    POA_ADDRESS_FIELDS,
)

ERROR = "error"
WARNING = "warning"

# Raise it whenever a rule or a severity changes: approval stamps a record's frozen payload with it (through
# records.services.check_stamp), so a record checked under older rules is checked again before it is sent.
RULES_VERSION = 2


@dataclass(frozen=True)
class Problem:
    field: str  # the API's own field name, e.g. "pan", "poa_pin_code"
    message: str  # says what is expected, in plain English for compliance staff
    severity: str = ERROR  # "error" blocks; "warning" is shown only

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


AADHAAR_MESSAGE = (
    "Enter only the last 4 digits of the Aadhaar number; a full Aadhaar number must never be stored"
)
# The same refusal in a field that is not the proof of address number (an address, an employee code):
# there the "last 4 digits" advice makes no sense.
AADHAAR_IN_TEXT_MESSAGE = (
    "{label} looks like it contains an Aadhaar number: a full Aadhaar number must never be stored, "
    "so remove it (keep at most its last 4 digits)"
)
PAN_MESSAGE = "PAN must be 5 letters, 4 digits, 1 letter, with P as 4th letter for an individual"

KYC_REF_NO_MAX_LENGTH = MAX_LENGTHS["kyc_ref_no"]
MIN_DOB = date(1900, 1, 1)
ADULT_AGE = 18
KYC_TYPE_MINOR = "05"
ISD_INDIA = "91"

_DATE_FIELDS = DATE_FIELDS
_STRING_FIELDS = tuple(
    name for name in FIELDS if name not in {*_DATE_FIELDS, "differently_abled_flag", "impairment_percentage"}
)
_ORDER = {name: index for index, name in enumerate(FIELDS)}

_POA_ADDRESS = POA_ADDRESS_FIELDS
_CURRENT_ADDRESS = CURRENT_ADDRESS_FIELDS


_TITLE_FEMALE = frozenset({"MRS", "MS", "MISS"})

# Proof-of-address codes that are never an individual's proof of address, whatever the POA table holds:
# deemed documents (current address only), legal-entity documents, and CERSAI's S-codes.
_NEVER_POA = frozenset({"06", "07", "11", "12", "13", "14", "15", "99"})

# What a message lists after "must be one of": the codes only for word codes (MR, FATHER), "code label"
# for numeric codes. Long lists (states, countries) are not listed: an example is given instead.
_LISTED = frozenset(
    {
        NAME_TITLES_LIST,
        RELATION_FLAGS_LIST,
        GENDERS_LIST,
        IMPAIRMENT_TYPES_LIST,
        POA_DOCUMENTS_LIST,
        KYC_TYPES_LIST,
        DOCUMENT_SUBMITTED_TYPES_LIST,
        YES_NO_LIST,
    }
)
_EXAMPLES = {
    STATES_LIST: "a 2-letter CERSAI state code, e.g. MH for Maharashtra",
    COUNTRIES_LIST: "a 2-letter ISO country code, e.g. IN for India",
}
_CHOICE_LEADS = {
    POA_DOCUMENTS_LIST: "an officially valid document",
}

# Pipe separates CERSAI's bulk-file columns; control characters (tabs, line breaks) corrupt rows.
_FORBIDDEN = re.compile(r"[|\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A 4-4-4 digit group not glued to more digits: a candidate full Aadhaar number inside any text. Digit
# patterns are ASCII-only: other scripts' digits are converted first (Aadhaar) or refused (stored formats).
_AADHAAR_RUN = re.compile(r"(?<!\d)(?<!\d[ -])\d{4}([ -]?)\d{4}\1\d{4}(?![ -]?\d)", re.ASCII)
_AADHAAR_FULL = re.compile(r"[2-9]\d{3}([ -]?)\d{4}\1\d{4}", re.ASCII)
_TWELVE_DIGITS = re.compile(r"\d{4}([ -]?)\d{4}\1\d{4}", re.ASCII)
_AADHAAR_LAST4 = re.compile(r"\d{4}", re.ASCII)
_FOUR_DIGITS = re.compile(r"\d{4}")  # decimal digits of any script, as _ascii_digits converts them

_REF_NO = re.compile(r"[A-Za-z0-9_/-]+")
_PAN = re.compile(r"[A-Z]{3}P[A-Z]\d{4}[A-Z]", re.ASCII)
_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
# CERSAI allows the apostrophe only in the father's or spouse's name (D'SOUZA), between letters.
_REL_NAME = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*(?: [A-Za-z]+(?:'[A-Za-z]+)*)*")
_PLACE = _NAME
# RB's address rule is "alphanumerics and spaces"; the punctuation of ordinary Indian addresses
# (12/B, Flat 4B, M.G. Road, Near (Temple)) is let through so the warning flags real oddities: symbols,
# non-Latin script, emoji.
_ADDRESS_TEXT = re.compile(r"[A-Za-z0-9 ,./()'&#:-]+")
_NAME_FIELDS_UPPER = (
    "applicant_first_name",
    "applicant_middle_name",
    "applicant_rel_first_name",
    "applicant_rel_middle_name",
)
_DIGITS_10 = re.compile(r"\d{10}", re.ASCII)
_UDID = re.compile(r"[A-Z]{2}\d{16}", re.ASCII)
_PASSPORT = re.compile(r"[A-Z]\d{7}", re.ASCII)
_VOTER_ID = re.compile(r"[A-Z]{3}\d{7}", re.ASCII)
_DRIVING_LICENCE = re.compile(r"[A-Z0-9]{1,20}")
_NREGA_OR_NPR = re.compile(r"[A-Z0-9/-]+")
_PIN_INDIA = re.compile(r"[1-9]\d{5}", re.ASCII)
_POSTAL_CODE = re.compile(r"[A-Za-z0-9 -]{1,10}")
_ISD = re.compile(r"\d{1,3}", re.ASCII)
_MOBILE_INDIA = re.compile(r"[6-9]\d{9}", re.ASCII)
_MOBILE_OTHER = re.compile(r"\d{1,20}", re.ASCII)

_MAX_LENGTHS = MAX_LENGTHS
_POA_NUMBER_MAX_LENGTH = MAX_LENGTHS["poa_document_number"]

# Verhoeff tables (dihedral group D5): multiplication, permutation.
_VERHOEFF_D = (
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
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][ord(digit) - 48]]
    return check == 0


def _ascii_digits(text: str) -> str:
    """Digits of any script (Devanagari, Arabic-Indic, ...) as ASCII: Aadhaar in any script counts."""
    if text.isascii():
        return text
    return "".join(str(int(ch)) if ch.isdecimal() else ch for ch in text)


def looks_like_aadhaar(text: str) -> bool:
    """True for 12 digits (optionally grouped 4-4-4 by spaces or hyphens), first digit 2-9, Verhoeff-valid."""
    candidate = _ascii_digits(text.strip())
    if not _AADHAAR_FULL.fullmatch(candidate):
        return False
    return _verhoeff_valid(candidate.replace(" ", "").replace("-", ""))


def contains_aadhaar(text: str) -> bool:
    """True when the text holds a full Aadhaar number anywhere (4-4-4 digits, Verhoeff-valid, any script)."""
    if not _FOUR_DIGITS.search(text):  # most text has no 4 digits in a row (of any script): no number
        return False
    text = _ascii_digits(text)
    return any(looks_like_aadhaar(match.group()) for match in _AADHAAR_RUN.finditer(text))


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class _Checker:
    """Collects the problems of one record; one error per field, the first one found."""

    def __init__(self, data: Mapping[str, Any], *, complete: bool, today: date, codes: CodeBook) -> None:
        self.data = data
        self.complete = complete
        self.today = today
        self.codes = codes
        self.problems: list[Problem] = []
        self.failed: set[str] = set()
        self.text: dict[str, str] = {}

    # -- reporting ---------------------------------------------------------------------------------

    def error(self, field: str, message: str) -> None:
        if field not in self.failed:
            self.failed.add(field)
            self.problems.append(Problem(field, message))

    def warn(self, field: str, message: str) -> None:
        self.problems.append(Problem(field, message, WARNING))

    # -- primitives --------------------------------------------------------------------------------

    def present(self, field: str, *, required: bool) -> bool:
        """True when a filled value is left to check; reports a blank required field when complete."""
        if field in self.failed:
            return False
        if self.text[field].strip():
            return True
        if required and self.complete:
            self.error(field, f"{FIELD_LABELS[field]} is required")
        return False

    def within_length(self, field: str, limit: int) -> bool:
        if len(self.text[field]) > limit:
            self.error(field, f"{FIELD_LABELS[field]} must be at most {limit} characters")
            return False
        return True

    def check_text(self, field: str, *, required: bool) -> None:
        if self.present(field, required=required):
            self.within_length(field, _MAX_LENGTHS[field])

    def check_choice(self, field: str, *, required: bool, message: str = "") -> None:
        """The value must be an active code of the field's list (CODED_LISTS)."""
        if not self.present(field, required=required):
            return
        list_name = CODED_LISTS[field]
        value = self.text[field]
        if value in self.codes.codes(list_name):
            return
        label = FIELD_LABELS[field]
        old = self.codes.inactive_label(list_name, value)
        if old is not None:
            # Built only on failure: a valid row never pays for a message.
            self.error(field, f"{label} {value} ({old}) is not in use; choose another")
            return
        self.error(field, message or self.choice_message(field, list_name))

    def choice_message(self, field: str, list_name: str) -> str:
        label = FIELD_LABELS[field]
        if list_name in _EXAMPLES:
            return f"{label} must be {_EXAMPLES[list_name]}"
        entries = self.codes.choices(list_name)
        numeric = all(code.isdigit() for code, _ in entries)
        listing = ", ".join(f"{code} {name}" if numeric else code for code, name in entries)
        lead = _CHOICE_LEADS.get(list_name, "one of")
        return f"{label} must be {lead}: {listing}" if listing else f"{label}: no codes are in use"

    def check_pattern(
        self, field: str, pattern: re.Pattern[str], message: str, *, required: bool, limit: int = 0
    ) -> None:
        if not self.present(field, required=required):
            return
        if limit and not self.within_length(field, limit):
            return
        if not pattern.fullmatch(self.text[field]):
            self.error(field, message)

    def date_value(self, field: str, *, required: bool) -> date | None:
        """The field's date if it is a sane date, else None (after reporting why)."""
        value = self.data.get(field)
        label = FIELD_LABELS[field]
        if value is None or value == "":
            if required and self.complete:
                self.error(field, f"{label} is required")
            return None
        if isinstance(value, datetime) or not isinstance(value, date):
            self.error(field, f"{label} must be a valid calendar date")
            return None
        if value > self.today:
            self.error(field, f"{label} cannot be in the future")
            return None
        return value

    # -- the record --------------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        self.screen_text()
        self.check_identity()
        self.check_names()
        dob = self.check_dob()
        self.check_disability()
        self.check_poa()
        self.check_current_address()
        self.check_contact()
        self.check_verification(dob)
        # Stable: within a field, the error comes before any warning raised later.
        self.problems.sort(key=lambda problem: _ORDER[problem.field])
        return self.problems

    def screen_text(self) -> None:
        """Type, Aadhaar and forbidden-character checks that apply to every text field, draft or not."""
        get = self.data.get
        for field in _STRING_FIELDS:
            value = get(field)
            if value is None or value == "":
                value = ""  # blank: nothing below applies
            elif not isinstance(value, str):
                self.error(field, f"{FIELD_LABELS[field]} must be text")
                value = ""
            elif len(value) >= 12 and contains_aadhaar(value):
                if field == "poa_document_number":
                    self.error(field, AADHAAR_MESSAGE)
                else:
                    self.error(field, AADHAAR_IN_TEXT_MESSAGE.format(label=FIELD_LABELS[field]))
            elif _FORBIDDEN.search(value):
                self.error(
                    field,
                    f"{FIELD_LABELS[field]} must not contain the | character, tabs, line breaks "
                    "or other control characters",
                )
            elif value != value.strip() and value.strip():
                # DOMAIN 6 "values trimmed" [I]: normalise_record trims, so only unnormalised input sees it.
                self.warn(field, f"{FIELD_LABELS[field]} has spaces at the start or end; remove them")
            self.text[field] = value
        for field in _NAME_FIELDS_UPPER:
            value = self.text[field]
            if field not in self.failed and value != value.upper():
                # DOMAIN 6 "uppercase names recommended" [I].
                self.warn(
                    field, f"{FIELD_LABELS[field]} should be in capital letters, as CERSAI records names"
                )

    def check_identity(self) -> None:
        self.check_pattern(
            "kyc_ref_no",
            _REF_NO,
            "KYC reference number must contain only letters, digits, hyphens (-), underscores (_) "
            "and slashes (/)",
            required=True,
            limit=KYC_REF_NO_MAX_LENGTH,
        )
        self.check_pattern("pan", _PAN, PAN_MESSAGE, required=True)

    def check_names(self) -> None:
        self.check_choice("applicant_name_title", required=True)
        for field, required in (("applicant_first_name", True), ("applicant_middle_name", False)):
            self.check_pattern(
                field,
                _NAME,
                f"{FIELD_LABELS[field]} must contain only letters, with single spaces between words",
                required=required,
                limit=_MAX_LENGTHS[field],
            )
        self.check_choice("applicant_rel_details_flag", required=True)
        self.check_choice("applicant_rel_name_title", required=True)
        for field, required in (("applicant_rel_first_name", True), ("applicant_rel_middle_name", False)):
            self.check_pattern(
                field,
                _REL_NAME,
                f"{FIELD_LABELS[field]} must contain only letters and apostrophes, "
                "with single spaces between words",
                required=required,
                limit=_MAX_LENGTHS[field],
            )
        self.check_choice("gender", required=True)
        if not self.complete:
            return
        # RB "pack convention", not a CERSAI rule: shown, never blocking. Transgender applicants may
        # use any title, so only M/F mismatches are flagged.
        title, gender = self.text["applicant_name_title"], self.text["gender"]
        if (title == "MR" and gender == "F") or (title in _TITLE_FEMALE and gender == "M"):
            self.warn(
                "applicant_name_title",
                "Title does not match gender: Mr is used for male applicants; Mrs, Ms and Miss for female",
            )
        if self.text["applicant_rel_details_flag"] == "SPOUSE" and title != "MRS":
            self.warn(
                "applicant_rel_details_flag",
                "Spouse details are usually given with the title Mrs; check the title and relation",
            )

    def check_dob(self) -> date | None:
        dob = self.date_value("dob", required=True)
        if dob is not None and dob < MIN_DOB:
            self.error("dob", f"Date of birth must be on or after {MIN_DOB:%d-%m-%Y}")
            return None
        return dob

    def check_disability(self) -> None:
        raw = self.data.get("differently_abled_flag")
        flag: bool | None
        if raw is None or raw == "":
            flag = False
        elif isinstance(raw, bool):
            flag = raw
        else:
            self.error("differently_abled_flag", "Differently abled must be Yes or No")
            flag = None

        if flag is False and self.complete:
            # DOMAIN 6 "blank or zero when flag false" [I]: a warning; forms and services blank them anyway.
            for field in ("impairment_type", "udid_number"):
                if field not in self.failed and self.text[field].strip():
                    self.warn(
                        field,
                        f"{FIELD_LABELS[field]} should be blank when the applicant is not differently abled",
                    )
            if self.data.get("impairment_percentage") not in (None, "", 0):
                self.warn(
                    "impairment_percentage",
                    "Impairment percentage should be blank when the applicant is not differently abled",
                )
            return

        required = flag is True
        self.check_choice("impairment_type", required=required)
        percentage = self.data.get("impairment_percentage")
        if percentage is None or percentage == "":
            if required and self.complete:
                self.error("impairment_percentage", "Impairment percentage is required")
        elif isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            self.error("impairment_percentage", "Impairment percentage must be a whole number from 0 to 100")
        self.check_pattern(
            "udid_number",
            _UDID,
            "UDID number must be 2 capital letters followed by 16 digits (18 characters)",
            required=False,
            limit=_MAX_LENGTHS["udid_number"],
        )
        if required and self.complete and "udid_number" not in self.failed and not self.text["udid_number"]:
            # CERSAI's field table has it optional, RB [S2] requires it: a strict intake refuses the record.
            self.error("udid_number", "UDID number is required for a differently abled applicant")

    def check_poa(self) -> None:
        document = self.text["poa_document"]
        if document in _NEVER_POA or document.startswith("S"):
            self.error(
                "poa_document",
                f"Proof of address document {document} is not an officially valid document for an "
                "individual's proof of address (deemed documents 11-15 and S-codes are not accepted)",
            )
        self.check_choice("poa_document", required=True)
        self.check_poa_number()
        self.check_address(_POA_ADDRESS, required=True)

    def check_poa_number(self) -> None:
        field = "poa_document_number"
        if not self.present(field, required=True):
            return
        number, document = self.text[field], self.text["poa_document"]
        if document in AADHAAR_POA_CODES:
            if _TWELVE_DIGITS.fullmatch(_ascii_digits(number.strip())):
                # Checksum-invalid or not, a 12-digit number here is someone's Aadhaar (or a typo of it).
                self.error(field, AADHAAR_MESSAGE)
            elif not _AADHAAR_LAST4.fullmatch(number):
                self.error(field, "For an Aadhaar-based proof of address, enter exactly the last 4 digits")
        # CERSAI's maximum lengths and RB's per-document formats: a badly formed document number is one of
        # the registry's rejection causes (RB's DVS catalogue), so each is an error.
        elif document == "02":
            if self.within_length(field, _POA_NUMBER_MAX_LENGTH) and not _PASSPORT.fullmatch(number):
                self.error(
                    field, "Passport number must be 1 capital letter followed by 7 digits, e.g. K1234567"
                )
        elif document == "04":
            if self.within_length(field, _POA_NUMBER_MAX_LENGTH) and not _VOTER_ID.fullmatch(number):
                self.error(
                    field, "Voter ID number must be 3 capital letters followed by 7 digits, e.g. ABC1234567"
                )
        elif document == "03":
            if self.within_length(field, 20) and not _DRIVING_LICENCE.fullmatch(number):
                self.error(
                    field,
                    "Driving licence number must be capital letters and digits only, "
                    "without spaces or hyphens",
                )
        elif document in ("05", "08"):
            limit = 40 if document == "05" else 20
            name = "NREGA job card number" if document == "05" else "NPR letter number"
            if self.within_length(field, limit) and not _NREGA_OR_NPR.fullmatch(number):
                self.error(
                    field, f"{name} must contain only capital letters, digits, hyphens (-) and slashes (/)"
                )
        else:
            self.within_length(field, _POA_NUMBER_MAX_LENGTH)

    def check_address(self, fields: tuple[str, ...], *, required: bool) -> None:
        line_1, vtc, state, country, pin = fields
        self.check_text(line_1, required=required)
        if line_1 not in self.failed and self.text[line_1] and not _ADDRESS_TEXT.fullmatch(self.text[line_1]):
            # RB's address characters [S2]: the registry records addresses in English letters.
            self.error(
                line_1,
                f"{FIELD_LABELS[line_1]} must contain only letters, digits, spaces and ordinary address "
                "punctuation ( , . / - ( ) ' & # : ), in English letters",
            )
        self.check_text(vtc, required=required)
        self.check_choice(state, required=required)
        self.check_choice(country, required=required)
        if self.text[country] == "IN":
            self.check_pattern(
                pin,
                _PIN_INDIA,
                f"{FIELD_LABELS[pin]} must be 6 digits, not starting with 0, for an address in India",
                required=required,
            )
            self.check_pin_master(pin, state)
        else:
            # CERSAI: a PIN is mandatory only in India; elsewhere a postal code of up to 10 characters.
            self.check_pattern(
                pin,
                _POSTAL_CODE,
                f"{FIELD_LABELS[pin]} must be at most 10 letters, digits, spaces or hyphens",
                required=False,
            )

    def check_pin_master(self, pin_field: str, state_field: str) -> None:
        """An Indian PIN must be in the PIN master and lie in the address's state."""
        pins = self.codes.pins
        pin = self.text[pin_field]
        if pins is None or pin_field in self.failed or not pin:
            return
        label = FIELD_LABELS[pin_field]
        if not pins:
            self.warn(
                pin_field,
                f"{label} was not checked against the PIN master, which is empty: an administrator must "
                "run manage.py refresh_pin_master",
            )
            return
        entry = pins.get(pin)
        if entry is None:
            # Never the PIN itself: it is part of the customer's address, and messages reach import files.
            self.error(pin_field, f"{label} is not in the PIN master: check the PIN code")
            return
        state = self.text[state_field]
        if not state or state_field in self.failed or not entry.states or state in entry.states:
            return
        where = " or ".join(
            f"{self.codes.label(STATES_LIST, code) or code} ({code})" for code in sorted(entry.states)
        )
        stated = self.codes.label(STATES_LIST, state) or state
        self.error(
            pin_field,
            f"{label} belongs to {where}, not to {stated} ({state}): check the PIN code or the "
            f"{FIELD_LABELS[state_field].lower()}",
        )

    def check_current_address(self) -> None:
        same_field = "current_address_same_as_poa_address"
        self.check_choice(
            same_field, required=True, message="Current address same as proof of address must be Y or N"
        )
        same = self.text[same_field]
        if same == "Y" and self.complete:
            for field in _CURRENT_ADDRESS:
                if field not in self.failed and self.text[field].strip():
                    self.error(
                        field,
                        f"{FIELD_LABELS[field]} must be blank when the current address is the same "
                        "as the proof of address",
                    )
            return
        self.check_address(_CURRENT_ADDRESS, required=same == "N")

    def check_contact(self) -> None:
        isd_field, mobile_field = "mobile_isd", "mobile_number"
        self.check_pattern(
            isd_field, _ISD, "Mobile ISD code must be 1 to 3 digits without +, e.g. 91", required=False
        )
        isd = self.text[isd_field]
        if isd == ISD_INDIA:
            # CERSAI checks 10 digits [S]; India's National Numbering Plan gives mobiles the first digits
            # 6-9 (RB CONTACT-01 [S2] checks it too): a number starting 0-5 is not a mobile.
            self.check_pattern(
                mobile_field,
                _DIGITS_10,
                "Mobile number must be 10 digits for ISD code 91, without the country code",
                required=False,
            )
            mobile = self.text[mobile_field]
            if mobile_field not in self.failed and mobile and not _MOBILE_INDIA.fullmatch(mobile):
                self.error(mobile_field, "An Indian mobile number (ISD code 91) must start with 6, 7, 8 or 9")
        else:
            self.check_pattern(
                mobile_field, _MOBILE_OTHER, "Mobile number must be digits only, at most 20", required=False
            )
        if not self.complete:
            return
        # Both or neither (RB CONTACT-01 [S2]): CERSAI's MOB_CODE and MOB_NUM describe one number.
        has_isd, has_mobile = bool(isd.strip()), bool(self.text[mobile_field].strip())
        if has_isd and not has_mobile and isd_field not in self.failed:
            self.error(mobile_field, "Mobile number is required when an ISD code is given")
        elif has_mobile and not has_isd and mobile_field not in self.failed:
            self.error(isd_field, "Mobile ISD code is required with a mobile number, e.g. 91")

    def check_verification(self, dob: date | None) -> None:
        declared = self.date_value("kyc_declaration_date", required=True)
        place = "kyc_declaration_place"
        self.check_text(place, required=True)
        if place not in self.failed and self.text[place] and not _PLACE.fullmatch(self.text[place]):
            # RB PLACE [S2]: the registry's declaration place is letters and spaces.
            self.error(place, "Declaration place must contain only letters, with single spaces between words")
        verified = self.date_value("kyc_verification_date", required=True)
        self.check_choice("kyc_type", required=True)
        for field in (
            "kyc_verifier_name",
            "kyc_verifier_designation",
            "kyc_verifier_branch",
            "kyc_verifier_employee_code",
        ):
            self.check_text(field, required=True)
        self.check_choice("kyc_type_of_document_submitted", required=True)
        if not self.complete:
            return
        if dob is not None and declared is not None and dob >= declared:
            self.error("dob", "Date of birth must be before the declaration date")
        if declared is not None and verified is not None and verified < declared:
            # The institution verifies what the customer declared: never before the declaration.
            self.error("kyc_verification_date", "Verification date cannot be before the declaration date")
        if dob is not None and "dob" not in self.failed:
            # Age is judged when the customer declared, which is when the KYC was taken. RB AGE-01 (tagged
            # CERSAI) [S2]: a minor's record is the minor KYC type, and only a minor's.
            age = _age_on(dob, declared or self.today)
            minor = self.text["kyc_type"] == KYC_TYPE_MINOR
            if age < ADULT_AGE and not minor:
                self.error(
                    "dob",
                    f"The applicant must be at least {ADULT_AGE} on the declaration date; "
                    f"use KYC type {KYC_TYPE_MINOR} Minor for a minor",
                )
            elif age >= ADULT_AGE and minor and "kyc_type" not in self.failed:
                self.error(
                    "kyc_type",
                    f"KYC type {KYC_TYPE_MINOR} Minor is for applicants under {ADULT_AGE} on the "
                    "declaration date",
                )


def validate_record(
    data: Mapping[str, Any],
    *,
    complete: bool = True,
    today: date | None = None,
    codes: CodeBook | None = None,
) -> list[Problem]:
    """Every problem with one flat record, in ``FIELDS`` order.

    ``today`` bounds "not in the future"; it defaults to ``date.today()``, so Django callers should pass
    ``timezone.localdate()``. ``codes`` holds the code lists and PIN master to check against: the portal
    passes ``codelists.selectors.code_book()`` (fetch it once per file, not per row); None means the static
    seed lists of ``codelists.codes`` and no PIN master.
    """
    book = STATIC_CODE_BOOK if codes is None else codes
    return _Checker(data, complete=complete, today=today or date.today(), codes=book).run()


def blocking_problems(problems: list[Problem], *, warnings_block: bool = False) -> list[Problem]:
    """The problems that stop a record: errors, and warnings too when the institution says they block."""
    if warnings_block:
        return list(problems)
    return [problem for problem in problems if problem.is_error]


# normalise_record ------------------------------------------------------------------------------------

_UPPER_FIELDS = frozenset(
    {
        "pan",
        "udid_number",
        "applicant_name_title",
        "applicant_rel_details_flag",
        "applicant_rel_name_title",
        "gender",
        "poa_document_number",
        "poa_state",
        "poa_country",
        "current_state",
        "current_country",
        "current_address_same_as_poa_address",
    }
)
_NAME_FIELDS = frozenset(
    {"applicant_first_name", "applicant_middle_name", "applicant_rel_first_name", "applicant_rel_middle_name"}
)
# Spreadsheets drop leading zeros: "1" comes back as "01".
_TWO_DIGIT_CODE_FIELDS = frozenset(
    {"impairment_type", "poa_document", "kyc_type", "kyc_type_of_document_submitted"}
)
_SEPARATORS = re.compile(r"[\s-]+")
_TRIM, _NAME_STEP, _PLACE_STEP, _UPPER_STEP, _CODE_STEP, _ISD_STEP, _MOBILE_STEP = range(7)
# What normalise_record does to each text field after trimming, decided once, not per row and field.
_NORMALISE_STEPS = tuple(
    (
        field,
        _NAME_STEP
        if field in _NAME_FIELDS
        else _PLACE_STEP
        if field == "kyc_declaration_place"
        else _UPPER_STEP
        if field in _UPPER_FIELDS
        else _CODE_STEP
        if field in _TWO_DIGIT_CODE_FIELDS
        else _ISD_STEP
        if field == "mobile_isd"
        else _MOBILE_STEP
        if field == "mobile_number"
        else _TRIM,
    )
    for field in _STRING_FIELDS
)
_WHITESPACE = re.compile(r"\s+")


def normalise_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: strings trimmed, codes/PAN/UDID/names upper-cased, obvious formatting removed.

    Never shortens or masks a value (a full Aadhaar number is left for validation to refuse), and
    leaves keys it does not know, and non-string values, unchanged.
    """
    result = dict(data)
    for field, step in _NORMALISE_STEPS:
        if field not in result:
            continue
        value = result[field]
        if value is None:
            result[field] = ""
            continue
        if not isinstance(value, str):
            continue
        value = value.strip()
        if step == _TRIM:
            pass
        elif step == _NAME_STEP:
            value = " ".join(value.split()).upper()
        elif step == _PLACE_STEP:
            value = " ".join(value.split())
        elif step == _UPPER_STEP:
            value = value.upper()
        elif step == _CODE_STEP:
            if len(value) == 1 and value.isdigit():
                value = "0" + value
        elif step == _ISD_STEP:
            value = value.lstrip("+").strip()
        elif step == _MOBILE_STEP:
            value = _SEPARATORS.sub("", value)
        result[field] = value

    if result.get("poa_document") == "03" and isinstance(result.get("poa_document_number"), str):
        # Licences are printed as "MH-12 20110012345"; CERSAI wants letters and digits only.
        result["poa_document_number"] = _SEPARATORS.sub("", result["poa_document_number"])
    for country, pin in (("poa_country", "poa_pin_code"), ("current_country", "current_pin_code")):
        if result.get(country) == "IN" and isinstance(result.get(pin), str):
            result[pin] = _WHITESPACE.sub("", result[pin])
    return result


def clean_record(
    data: Mapping[str, Any], *, resolve: Callable[[dict[str, Any]], list[Problem]] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """What every entry path stores: ``normalise_record``, then blank what the record's own flags exclude
    (the current address when it is the proof of address, the disability details when not differently
    abled, the ISD code without a mobile number).

    ``resolve`` runs between the two on the normalised dict, in place (the import turns labels into codes
    there, so a "Yes" in the same-address column blanks the current address); its problems are returned.
    """
    cleaned = normalise_record(data)
    problems = resolve(cleaned) if resolve is not None else []
    if cleaned.get("current_address_same_as_poa_address") == "Y":
        cleaned.update(dict.fromkeys(CURRENT_ADDRESS_FIELDS, ""))
    if not cleaned.get("differently_abled_flag"):
        cleaned.update(impairment_type="", impairment_percentage=None, udid_number="")
    if "mobile_number" in cleaned and not cleaned.get("mobile_number"):
        cleaned["mobile_isd"] = ""
    return cleaned, problems
