"""The import templates: the columns, one example row, and (workbook) one sheet per code list.

Each column is required or optional (``parsers.OPTIONAL_COLUMNS``): the workbook's header cells say which
in a note (and optional ones are not bold), and the import page lists the optional ones.

The example row's ``kyc_ref_no`` is ``EXAMPLE_REF``: the importer skips that row, so a template filled in
below it (or over it) imports as it is. The workbook's code sheets are named ``Codes - <list>``; the
importer ignores sheets of exactly those names and refuses any other second sheet, so the file a maker
downloaded can be uploaded without deleting anything.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from codelists.codes import CODED_LISTS, CodeBook
from codelists.selectors import CODE_LISTS
from kwikid.fields import CURRENT_ADDRESS_FIELDS, DISABILITY_FIELDS, FIELD_LABELS

from .parsers import BRANCH_COLUMN, COLUMNS, EXAMPLE_REF, OPTIONAL_COLUMNS, code_sheet_name

RECORDS_SHEET = "Records"

# A complete, valid record (the PIN lies in the state); codes, not labels, as KwikID receives them.
EXAMPLE: dict[str, str] = {
    "kyc_ref_no": EXAMPLE_REF,
    "pan": "ABCPK1234L",
    "applicant_name_title": "MR",
    "applicant_first_name": "RAVI",
    "applicant_middle_name": "KUMAR",
    "applicant_rel_details_flag": "FATHER",
    "applicant_rel_name_title": "MR",
    "applicant_rel_first_name": "SURESH",
    "applicant_rel_middle_name": "",
    "gender": "M",
    "dob": "1985-04-12",
    "differently_abled_flag": "N",
    "impairment_type": "",
    "impairment_percentage": "",
    "udid_number": "",
    "poa_document": "02",
    "poa_document_number": "K1234567",
    "poa_address_line_1": "12 Marine Drive, Flat 4B",
    "poa_vtc": "Mumbai",
    "poa_state": "MH",
    "poa_country": "IN",
    "poa_pin_code": "400001",
    "current_address_same_as_poa_address": "Y",
    "current_address_line_1": "",
    "current_vtc": "",
    "current_state": "",
    "current_country": "",
    "current_pin_code": "",
    "mobile_isd": "91",
    "mobile_number": "9876543210",
    "kyc_declaration_date": "2026-11-02",
    "kyc_declaration_place": "Mumbai",
    "kyc_verification_date": "2026-11-03",
    "kyc_type": "01",
    "kyc_verifier_name": "Anita Deshpande",
    "kyc_verifier_designation": "Branch Officer",
    "kyc_verifier_branch": "Fort, Mumbai",
    "kyc_verifier_employee_code": "EMP-0042",
    "kyc_type_of_document_submitted": "01",
    "branch_code": "",
}


REQUIRED = "Required."
_OPTIONAL = "Optional: may be blank, and the column may be left out of the file"


def column_note(name: str) -> str:
    """Whether a column is required or optional (``parsers.OPTIONAL_COLUMNS``), and when an optional one is
    needed: the note on the workbook template's header cell and on the import page."""
    if name not in OPTIONAL_COLUMNS:
        return REQUIRED
    if name == BRANCH_COLUMN:
        return f"{_OPTIONAL} (blank: the branch chosen on the import page)."
    if name in CURRENT_ADDRESS_FIELDS:
        return f"{_OPTIONAL}; needed when current_address_same_as_poa_address is N."
    if name == "differently_abled_flag":
        return f"{_OPTIONAL} (blank means N)."
    if name in DISABILITY_FIELDS:
        return f"{_OPTIONAL}; needed when differently_abled_flag is Y."
    return f"{_OPTIONAL}."


def column_notes() -> list[tuple[str, str, bool]]:
    """(column, note, required) for every column of the template, in its order."""
    return [(name, column_note(name), name not in OPTIONAL_COLUMNS) for name in COLUMNS]


def example_values(today: date | None = None) -> dict[str, str]:
    """The example record, declared yesterday and verified today: rows a maker copies from it start with
    the whole upload deadline ahead of them, not already overdue."""
    today = today or timezone.localdate()
    return EXAMPLE | {
        "kyc_declaration_date": (today - timedelta(days=1)).isoformat(),
        "kyc_verification_date": today.isoformat(),
    }


def example_row() -> list[str]:
    """The example record in the template's column order."""
    values = example_values()
    return [values[name] for name in COLUMNS]


def write_template_xlsx(target: Any, *, book: CodeBook) -> None:
    """The workbook template: a Records sheet (header, the example row) and one sheet per code list."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = RECORDS_SHEET
    sheet.append(list(COLUMNS))
    sheet.append(example_row())
    bold = Font(bold=True)
    optional_font = Font(italic=True, color="595959")
    example_fill = PatternFill("solid", fgColor="FFF2CC")
    for cell in sheet[1]:
        name = str(cell.value)
        # Required columns in bold, optional ones in grey italics; each header says which, as a note.
        cell.font = optional_font if name in OPTIONAL_COLUMNS else bold
        label = FIELD_LABELS.get(name, "Branch code")
        cell.comment = Comment(f"{label}. {column_note(name)}", "CKYC Portal", width=300, height=90)
        sheet.column_dimensions[cell.column_letter].width = max(12, len(name) + 2)
    for cell in sheet[2]:
        cell.fill = example_fill
        cell.font = Font(italic=True)
    sheet["A2"].comment = Comment(
        f"Example row: a row with kyc_ref_no {EXAMPLE_REF} is never imported. Add your records below "
        "it (or overwrite it). Codes: see the 'Codes - …' sheets; a label (Male, Maharashtra) works too.",
        "CKYC Portal",
    )
    sheet.freeze_panes = "B2"
    used_in: dict[str, list[str]] = {}
    for field, list_name in CODED_LISTS.items():
        used_in.setdefault(list_name, []).append(field)
    for list_name, title in CODE_LISTS:
        codes = workbook.create_sheet(code_sheet_name(title))
        codes.append(["code", "label", "used in columns"])
        for cell in codes[1]:
            cell.font = bold
        entries = book.choices(list_name)
        for i, (code, label) in enumerate(entries):
            codes.append([code, label, ", ".join(used_in.get(list_name, [])) if i == 0 else None])
        codes.column_dimensions["A"].width = 8
        codes.column_dimensions["B"].width = 40
        codes.column_dimensions["C"].width = 50
        codes.freeze_panes = "A2"
        codes.protection.sheet = True  # a reference, not a place for records (no password: not a secret)
    workbook.save(target)
