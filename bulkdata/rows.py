"""One file row -> the values a KycRecord is saved with, or the problems that stop it. PURE: no database.

The same steps as ``records.services.record_create`` followed by ``record_submit``: normalise, blank the
parts the record's own flags make irrelevant, validate as complete. A test holds the two paths equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from records.codes import CodeBook
from records.validation import FIELD_LABELS, FIELDS, Problem, normalise_record, validate_record

from .parsers import (
    BRANCH_COLUMN,
    DATE_FIELDS,
    DATE_MESSAGE,
    RawRow,
    cell_text,
    parse_date,
    parse_flag,
    parse_whole_number,
)

_CURRENT_ADDRESS = (
    "current_address_line_1",
    "current_vtc",
    "current_state",
    "current_country",
    "current_pin_code",
)


def check_record(data: Mapping[str, Any], *, today: date, codes: CodeBook | None) -> list[Problem]:
    """CKYC validation of one import row, as complete (import is followed by submission), against the
    code lists and PIN master the services use (``codelists.selectors.code_book()``, fetched once a file)."""
    return validate_record(data, complete=True, today=today, codes=codes)


@dataclass(slots=True)
class PreparedRow:
    number: int
    problems: list[Problem]
    values: dict[str, Any]  # the model's field values (plain, before encryption), pan_hash included
    branch_code: str  # "" for the import's default branch
    blocked: bool = False

    @property
    def ref_key(self) -> str:
        return str(self.values.get("kyc_ref_no") or "").upper()


def convert(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Cells as the types validation expects (dates, a Yes/No flag, a whole number, text)."""
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in FIELDS:
        value = values.get(name)
        if name in DATE_FIELDS:
            parsed = parse_date(value)
            if parsed == "bad":
                problems.append(Problem(name, DATE_MESSAGE.format(label=FIELD_LABELS[name])))
                parsed = None
            data[name] = parsed
        elif name == "differently_abled_flag":
            flag = parse_flag(value)
            if flag is None:
                problems.append(Problem(name, "Differently abled must be Y or N (or Yes / No, true / false)"))
                flag = False
            data[name] = flag
        elif name == "impairment_percentage":
            number = parse_whole_number(value)
            if number == "bad":
                problems.append(Problem(name, "Impairment percentage must be a whole number from 0 to 100"))
                number = None
            data[name] = number
        else:
            data[name] = cell_text(value)
    return data, problems


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """What ``records.services`` does before validating: normalise, and blank what the flags exclude."""
    cleaned = normalise_record(data)
    if cleaned.get("current_address_same_as_poa_address") == "Y":
        for name in _CURRENT_ADDRESS:
            cleaned[name] = ""
    if not cleaned.get("differently_abled_flag"):
        cleaned.update(impairment_type="", impairment_percentage=None, udid_number="")
    if "mobile_number" in cleaned and not cleaned.get("mobile_number"):
        cleaned["mobile_isd"] = ""
    return cleaned


def prepare(row: RawRow, *, today: date, warnings_block: bool, codes: CodeBook | None = None) -> PreparedRow:
    """Convert, clean and validate one row (duplicates and branches are the service's, with the database)."""
    data, problems = convert(row.values)
    problems += [Problem(field, message, severity) for field, message, severity in row.notes]
    cleaned = clean(data)
    failed = {p.field for p in problems if p.is_error}
    problems += [p for p in check_record(cleaned, today=today, codes=codes) if p.field not in failed]
    values = {name: cleaned.get(name, "") for name in FIELDS}
    branch_code = row.values.get(BRANCH_COLUMN)
    prepared = PreparedRow(
        number=row.number,
        problems=problems,
        values=values,
        branch_code=str(branch_code).strip().upper() if branch_code not in (None, "") else "",
    )
    prepared.blocked = blocks(problems, warnings_block=warnings_block)
    return prepared


def blocks(problems: list[Problem], *, warnings_block: bool) -> bool:
    return any(p.is_error or warnings_block for p in problems)
