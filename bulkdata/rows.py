"""One file row -> the values a KycRecord is saved with, or the problems that stop it. PURE: no database.

The same steps as ``records.services.record_create`` followed by ``record_submit``: normalise, blank the
parts the record's own flags make irrelevant, validate as complete. A test holds the two paths equal.
One step is the import's own: a coded column may hold the entry's label instead of its code ("Male",
"Maharashtra", "Passport"), taken when exactly one entry of the list has that label.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from codelists.codes import CODED_LISTS, STATIC_CODE_BOOK, CodeBook
from kwikid.fields import FIELD_LABELS, FIELDS
from records.validation import Problem, clean_record, validate_record

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

_CONVERTED_FIELDS = frozenset({"differently_abled_flag", "impairment_percentage"})


def check_record(data: Mapping[str, Any], *, today: date, codes: CodeBook | None) -> list[Problem]:
    """CKYC validation of one import row, as complete (import is followed by submission), against the
    code lists and PIN master the services use (``codelists.selectors.code_book()``, fetched once a file)."""
    return validate_record(data, complete=True, today=today, codes=codes)


@dataclass(slots=True)
class PreparedRow:
    number: int
    problems: list[Problem]
    # The model's field values (plain, before encryption); emptied once ``line`` holds them for COPY.
    values: dict[str, Any]
    branch_code: str  # "" for the import's default branch
    blocked: bool = False
    ref_key: str = ""  # kyc_ref_no upper-cased: duplicates ignore case
    pan_hash: str = ""  # the PAN's keyed hash ("" without a PAN), set by the import before duplicates
    line: str = ""  # the record as a line of COPY text without its id, when written with COPY
    tokens: tuple[str, ...] = ()  # its name tokens (keyed hashes), with ``line``


_TEXT_FIELDS = tuple(name for name in FIELDS if name not in DATE_FIELDS and name not in _CONVERTED_FIELDS)
_TYPED_FIELDS = tuple(name for name in FIELDS if name in DATE_FIELDS or name in _CONVERTED_FIELDS)


def convert(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Cells as the types validation expects (dates, a Yes/No flag, a whole number, text)."""
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    get = values.get
    for name in _TEXT_FIELDS:
        value = get(name)
        # A CSV cell is already text: only a leading quote (the exports' formula guard) needs cell_text.
        data[name] = value if value.__class__ is str and value[:1] != "'" else cell_text(value)
    for name in _TYPED_FIELDS:  # in FIELDS order, so their problems are too
        value = get(name)
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
    return data, problems


def _fold(text: str) -> str:
    """A label as compared: no diacritics, case or repeated spaces ("  tamil nadu" == "Tamil Nadu")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().split())


@dataclass(frozen=True, slots=True)
class LabelIndex:
    """Per list: folded label -> its one code, and folded label -> the codes that share it."""

    unique: dict[str, dict[str, str]]
    shared: dict[str, dict[str, tuple[str, ...]]]
    active: tuple[
        tuple[str, str, frozenset[str]], ...
    ]  # (field, list, its active codes) for each coded field


def _index(entries: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    found: dict[str, list[str]] = {}
    for code, label in entries:
        found.setdefault(_fold(label), []).append(code)
    unique = {key: codes[0] for key, codes in found.items() if len(codes) == 1}
    shared = {key: tuple(codes) for key, codes in found.items() if len(codes) > 1}
    return unique, shared


def label_index(book: CodeBook) -> LabelIndex:
    """The active labels of every coded list, built once per code book (not per row)."""
    global _label_cache
    cached = _label_cache
    if cached is not None and cached[0] is book:
        return cached[1]
    unique: dict[str, dict[str, str]] = {}
    shared: dict[str, dict[str, tuple[str, ...]]] = {}
    for list_name in set(CODED_LISTS.values()):
        unique[list_name], shared[list_name] = _index(book.choices(list_name))
    active = tuple((name, list_name, book.codes(list_name)) for name, list_name in CODED_LISTS.items())
    index = LabelIndex(unique=unique, shared=shared, active=active)
    _label_cache = (book, index)
    return index


_label_cache: tuple[CodeBook, LabelIndex] | None = None


def resolve_labels(cleaned: dict[str, Any], *, codes: CodeBook) -> list[Problem]:
    """Coded columns holding a label get its code, in place; a label two entries share is an error (the
    importer does not guess). Anything else is left for validation to refuse."""
    index = label_index(codes)
    problems: list[Problem] = []
    for name, list_name, active in index.active:
        value = cleaned.get(name)
        if not isinstance(value, str) or not value or value in active:
            continue
        key = _fold(value)
        code = index.unique[list_name].get(key)
        if code is not None:
            cleaned[name] = code
            continue
        sharing = index.shared[list_name].get(key)
        if sharing:
            label = codes.label(list_name, sharing[0]) or ""
            problems.append(
                Problem(
                    name,
                    f"{FIELD_LABELS[name]}: “{label}” is the label of {len(sharing)} codes "
                    f"({', '.join(sharing)}); write the code",
                )
            )
    return problems


def _explain_codes(problems: list[Problem], cleaned: Mapping[str, Any], codes: CodeBook) -> list[Problem]:
    """Validation's "must be one of" for a value that is neither a code nor a label: say labels work too."""
    result = []
    for problem in problems:
        list_name = CODED_LISTS.get(problem.field)
        value = cleaned.get(problem.field)
        if (
            list_name is not None
            and problem.is_error
            and isinstance(value, str)
            and value
            and value not in codes.codes(list_name)
            and codes.inactive_label(list_name, value) is None
            and problem.message.startswith(f"{FIELD_LABELS[problem.field]} must be")
        ):
            problem = Problem(
                problem.field, f"{problem.message}, or a label as the Codes page lists it", problem.severity
            )
        result.append(problem)
    return result


def clean(data: Mapping[str, Any], *, codes: CodeBook | None = None) -> tuple[dict[str, Any], list[Problem]]:
    """``clean_record``, as the services store records; with ``codes``, labels in coded columns become
    codes first (the import's own step)."""
    if codes is None:
        return clean_record(data)
    book = codes
    return clean_record(data, resolve=lambda cleaned: resolve_labels(cleaned, codes=book))


def prepare(row: RawRow, *, today: date, warnings_block: bool, codes: CodeBook | None = None) -> PreparedRow:
    """Convert, clean and validate one row (duplicates and branches are the service's, with the database)."""
    book = codes if codes is not None else STATIC_CODE_BOOK  # what validate_record(codes=None) uses
    data, problems = convert(row.values)
    if row.notes:
        # The reader's problem with a cell (a control character in it) is that field's one error.
        noted = {field for field, _message, severity in row.notes if severity == "error"}
        problems = [problem for problem in problems if problem.field not in noted]
        problems += [Problem(field, message, severity) for field, message, severity in row.notes]
    cleaned, label_problems = clean(data, codes=book)
    problems += label_problems
    failed = {p.field for p in problems if p.is_error}
    checked = [p for p in check_record(cleaned, today=today, codes=codes) if p.field not in failed]
    problems += _explain_codes(checked, cleaned, book)
    values = {name: cleaned.get(name, "") for name in FIELDS}
    branch_code = row.values.get(BRANCH_COLUMN)
    prepared = PreparedRow(
        number=row.number,
        problems=problems,
        values=values,
        branch_code=str(branch_code).strip().upper() if branch_code not in (None, "") else "",
        ref_key=str(values.get("kyc_ref_no") or "").upper(),
    )
    prepared.blocked = blocks(problems, warnings_block=warnings_block)
    return prepared


def blocks(problems: list[Problem], *, warnings_block: bool) -> bool:
    return any(p.is_error or warnings_block for p in problems)
