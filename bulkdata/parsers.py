"""Reading import files (CSV, XLSX, JSON) row by row, never the whole file in memory. PURE: no database.

A file-level problem (encoding, columns, formulas, sizes) raises ``FileRefused`` with a message for the
person who made the file; nothing is read further. Row-level problems are validation's business.

Row numbers are what the person sees: the spreadsheet row for CSV and XLSX (the header is row 1, so the
first record is row 2; for CSV the line where the record ends), and the record's position (1, 2, ...) in
a JSON ``records`` array.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import ijson
from defusedxml import DefusedXmlException

from ckycportal.errors import PortalError
from codelists.selectors import CODE_LISTS
from kwikid.fields import CURRENT_ADDRESS_FIELDS, DISABILITY_FIELDS, FIELDS, RECORD, SECTIONS

# Limits, stated on the import page. The longest field takes 150 characters; a line of 40 such cells
# stays far below MAX_LINE_CHARS.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # about 200,000 rows of CSV; the command line has no byte limit
MAX_XLSX_BYTES = 50 * 1024 * 1024  # compressed; read into memory because a zip needs seeking
# A workbook may unpack to no more than a CSV upload may hold: its zip's declared sizes are checked before
# anything is read (zipfile stops a member at its declared size), so a zip bomb is refused unread.
MAX_XLSX_UNZIPPED_BYTES = MAX_UPLOAD_BYTES
MAX_ROWS = 1_000_000
MAX_CELL_CHARS = 1_000
MAX_LINE_CHARS = 65_536
MAX_BLANK_ROWS = 1_000  # blank lines are skipped, but a file of mostly nothing is not a data file

BRANCH_COLUMN = "branch_code"
COLUMNS: tuple[str, ...] = (*FIELDS, BRANCH_COLUMN)
# Columns a CSV or workbook may leave out: their cells are read as blank. A column is optional when the CKYC
# rules (records.validation) accept it blank in a complete record: those never required (middle names, the
# mobile and its ISD code, the differently-abled flag, which blank means N) and those required only when
# another column says so (the disability details for a differently abled applicant, the current address
# when it is not the proof of address: a row that needs them then gets that field's own "is required").
# Every other field is a required column, refused by name when absent. The template and the import page
# say which is which from here; tests/bulkdata/test_columns.py holds this list to validation's rules.
OPTIONAL_COLUMNS: frozenset[str] = frozenset(
    {
        "applicant_middle_name",
        "applicant_rel_middle_name",
        "differently_abled_flag",
        *DISABILITY_FIELDS,
        *CURRENT_ADDRESS_FIELDS,
        "mobile_isd",
        "mobile_number",
        BRANCH_COLUMN,
    }
)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(name for name in FIELDS if name not in OPTIONAL_COLUMNS)
# Columns the portal's own files add after the fields (the record export's status, updated_at and what the
# registry gave, the error file's errors); an import ignores them, so those files can be uploaded again.
EXPORT_ONLY_COLUMNS = frozenset(
    {"status", "updated_at", "ckyc_number", "accepted_on", "registered_on", "errors"}
)
# Members of KwikID's request body that the portal does not keep (yet): reported, not imported.
API_MEMBERS_NOT_KEPT = frozenset(
    {"number_of_identity", "additional_documents", "remarks", "related_person_info"}
)

# The templates' example row (bulkdata/template.py): a CSV or workbook row with this kyc_ref_no is skipped,
# so a template filled in below its example imports as it is.
EXAMPLE_REF = "EXAMPLE-1"
# The workbook template's code sheets: a workbook may keep sheets of exactly these names beside its
# records sheet (they are not read); any other second sheet is refused.
CODE_SHEET_PREFIX = "Codes - "


def code_sheet_name(title: str) -> str:
    return f"{CODE_SHEET_PREFIX}{title}"[:31]  # Excel's limit for a sheet name


CODE_SHEET_NAMES: frozenset[str] = frozenset(code_sheet_name(title) for _, title in CODE_LISTS)

CSV, XLSX, JSON = "csv", "xlsx", "json"

Opener = Callable[[], IO[bytes]]


class FileRefused(PortalError):
    """The file as a whole cannot be imported; the message says why and what to do."""


@dataclass(slots=True)
class RawRow:
    """One record as found in the file: cell values by column name (strings, or XLSX's typed values)."""

    number: int
    values: dict[str, Any]
    # Problems the reader found in this row (unknown JSON members): (field, message, severity).
    notes: list[tuple[str, str, str]] = field(default_factory=list)


# Bytes that text does not hold: the C0 controls but tab, line feed, form feed and carriage return, and DEL.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_binary(head: bytes) -> bool:
    """A file's first bytes are binary data, not text with a stray NUL in a cell (which is that row's
    problem): they are not UTF-8, or more than one byte in 32 is a control byte (UTF-16 without a byte order
    mark, images, executables, a file of zeros)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return True
    return len(_CONTROL_BYTES.findall(head)) * 32 > len(head)


def detect_format(head: bytes, filename: str = "") -> str:
    """The file's format from its first bytes (the name only breaks ties); refuses what no reader takes."""
    if not head.strip():
        raise FileRefused("The file is empty.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused(
            "The file is UTF-16 text (Excel's 'Unicode Text'). Save it as 'CSV UTF-8 (Comma delimited)' "
            "or as an Excel workbook (.xlsx) and upload that."
        )
    if head.startswith(b"PK\x03\x04"):
        return XLSX
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused(
            "Old Excel files (.xls) cannot be read. Save the workbook as .xlsx and upload that."
        )
    if b"\x00" in head and _is_binary(head):
        raise FileRefused("This is not a text file or a spreadsheet (it holds binary data).")
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if text[:1] in (b"{", b"[") or filename.lower().endswith(".json"):
        return JSON
    return CSV


def read_rows(opener: Opener, filename: str = "") -> Iterator[RawRow]:
    """Every record of the file in order, read as a stream; raises FileRefused for a bad file."""
    with opener() as probe:
        head = probe.read(8192)
    kind = detect_format(head, filename)
    if kind == XLSX:
        yield from _xlsx_rows(opener)
    elif kind == JSON:
        yield from _json_rows(opener)
    else:
        yield from _csv_rows(opener)


# --- columns ----------------------------------------------------------------------------------------


def _header(cells: list[Any]) -> list[str]:
    """The column names of a header row; refuses repeated, unknown and missing columns in one message."""
    names = ["" if cell is None else str(cell).strip().lower() for cell in cells]
    while names and not names[-1]:
        names.pop()  # trailing empty cells: a spreadsheet's formatting, not columns
    problems = []
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in names:
        if name and name in seen:
            repeated.add(name)
        seen.add(name)
    if repeated:
        problems.append(f"repeated columns: {', '.join(sorted(repeated))}")
    if "" in names:
        problems.append(f"column {names.index('') + 1} has no name")
    extra = [name for name in names if name and name not in COLUMNS and name not in EXPORT_ONLY_COLUMNS]
    if extra:
        problems.append(f"unknown columns: {', '.join(_short(name) for name in extra[:10])}")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if problems:
        raise FileRefused(
            "The header row does not match the template ("
            + "; ".join(problems)
            + "). Columns are the API's field names, plus an optional branch_code; optional columns (the "
            "current address, the disability details, middle names, mobile) may be left out. Download the "
            "template."
        )
    return names


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _check_cell(number: int, column: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        raise FileRefused(
            f"Row {number}, column {column}: the cell holds {len(value):,} characters; no field takes more "
            f"than {MAX_CELL_CHARS:,}. Check that the right file was chosen."
        )


# A control character in a cell is a problem of that row and column, not of the file. Tab, line feed and
# carriage return are not among them: a quoted CSV cell or a workbook cell may hold them (Alt+Enter in
# Excel), and validation refuses them in every text field with its own message, so the maker fixes the
# address rather than the portal joining its lines.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Excel stores a control character in a cell as the escape _xHHHH_ (XML cannot hold it); openpyxl reads the
# escape as that text.
_EXCEL_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_CHECKED_COLUMNS = frozenset(COLUMNS)


def control_message(char: str) -> str:
    return f"a control character (U+{ord(char):04X}) is not allowed"


def _control_character(value: str, *, excel: bool) -> str | None:
    found = CONTROL_CHARACTER.search(value)
    if found:
        return found.group()
    if excel and "_x" in value:
        for escape in _EXCEL_ESCAPE.finditer(value):
            char = chr(int(escape.group(1), 16))
            if CONTROL_CHARACTER.match(char):
                return char
    return None


def control_notes(values: dict[str, Any], *, excel: bool = False) -> list[tuple[str, str, str]]:
    """A problem for each column of a record whose cell holds a control character (run only on rows where
    a cheaper check over the whole line or row found one, or per text cell of a workbook)."""
    notes = []
    for name, value in values.items():
        if name in _CHECKED_COLUMNS and isinstance(value, str):
            char = _control_character(value, excel=excel)
            if char is not None:
                notes.append((name, control_message(char), "error"))
    return notes


def _too_many_rows(number: int) -> FileRefused:
    return FileRefused(
        f"The file has more than {MAX_ROWS:,} records (row {number:,}). Split it into smaller files."
    )


def _is_example(values: dict[str, Any]) -> bool:
    ref = values.get("kyc_ref_no")
    return isinstance(ref, str) and ref.strip().upper() == EXAMPLE_REF


def _no_records(saw_example: bool) -> FileRefused:
    if saw_example:
        return FileRefused(
            f"The file holds only the template's example row ({EXAMPLE_REF}), which is never imported. "
            "Add your records below it."
        )
    return FileRefused("The file has a header row but no records.")


def _too_many_blanks() -> FileRefused:
    return FileRefused(
        f"The file has more than {MAX_BLANK_ROWS:,} blank rows. Remove them (or check that the right file "
        "was chosen) and upload it again."
    )


# --- CSV --------------------------------------------------------------------------------------------


def _lines(binary: IO[bytes], controls: list[int]) -> Iterator[str]:
    """The file's lines as text, decoded one by one (so a decoding error names its line), refusing a line
    longer than MAX_LINE_CHARS before it is read into memory. Appends to ``controls`` the number of each
    line holding a control character (a cheap test a line: the cells are looked at only then)."""
    number = 0
    search = CONTROL_CHARACTER.search
    while True:
        line = binary.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith((b"\n", b"\r")):
            raise FileRefused(
                f"Line {number} is longer than {MAX_LINE_CHARS:,} characters; no record is that long. "
                "Check that the right file was chosen."
            )
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # Excel's "CSV UTF-8" starts with a byte order mark
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise FileRefused(
                f"The file is not UTF-8 text (line {number}). In Excel choose 'Save as' → "
                "'CSV UTF-8 (Comma delimited)', or upload the workbook (.xlsx) itself."
            ) from None
        # isprintable() is false for every control character, and several times faster than the regex,
        # which then looks only at lines with a tab, a lone CR or a character str calls unprintable.
        if not text.rstrip("\r\n").isprintable() and search(text):
            controls.append(number)
        yield text


def _csv_rows(opener: Opener) -> Iterator[RawRow]:
    with opener() as binary:
        controls: list[int] = []  # lines with a control character not yet matched to their row
        lines = _lines(binary, controls)
        reader: Any = None
        try:
            first = next((line for line in lines if line.strip()), None)
            if first is None:
                raise FileRefused("The file is empty.")
            delimiter = ";" if first.count(";") > first.count(",") else ","
            reader = csv.reader(_chain(first, lines), delimiter=delimiter, strict=True)
            names = _header(next(reader))
            controls.clear()  # the header's own: an unknown column's name is refused above
            width = len(names)
            blanks, count = 0, 0
            saw_example = False
            for cells in reader:
                # The reader has read exactly this row's lines since the last row.
                dirty = bool(controls)
                if dirty:
                    controls.clear()
                if not any(cell.strip() for cell in cells):
                    blanks += 1
                    if blanks > MAX_BLANK_ROWS:
                        raise _too_many_blanks()
                    continue
                count += 1
                number = reader.line_num
                if count > MAX_ROWS:
                    raise _too_many_rows(number)
                if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                    raise FileRefused(
                        f"Row {number} has {len(cells)} cells but the header names {width} columns. "
                        "Check for a comma inside a value that is not in quotes."
                    )
                if sum(map(len, cells)) > MAX_CELL_CHARS:  # only then can one cell be too long
                    for name, cell in zip(names, cells, strict=False):
                        _check_cell(number, name, cell)
                values = dict(zip(names, cells, strict=False))
                if _is_example(values):
                    count -= 1
                    saw_example = True
                    continue
                yield RawRow(number, values, control_notes(values)) if dirty else RawRow(number, values)
            if count == 0:
                raise _no_records(saw_example)
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            if "field larger than field limit" in str(exc):
                raise FileRefused(
                    f"Near line {line} a cell is far longer than any field takes. "
                    "Check that the right file was chosen."
                ) from None
            raise FileRefused(f"The CSV cannot be read near line {line}: {exc}.") from None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


# --- XLSX -------------------------------------------------------------------------------------------


def _xlsx_rows(opener: Opener) -> Iterator[RawRow]:
    import openpyxl

    with opener() as binary:
        data = binary.read(MAX_XLSX_BYTES + 1)
    if len(data) > MAX_XLSX_BYTES:
        raise FileRefused(
            f"Workbooks are limited to {MAX_XLSX_BYTES // (1024 * 1024)} MB. Save it as CSV UTF-8 "
            "(no such limit on the command line) or split it."
        )
    buffer = io.BytesIO(data)
    try:
        with zipfile.ZipFile(buffer) as archive:
            _check_archive(archive)
        buffer.seek(0)
        workbook = openpyxl.load_workbook(buffer, read_only=True, data_only=False)
    except FileRefused:
        raise
    except Exception as exc:  # whatever openpyxl raises on a bad file means it cannot be read
        raise _unreadable(exc) from None
    try:
        sheet = workbook[_records_sheet(workbook.sheetnames)]
        names: list[str] | None = None
        blanks, count = 0, 0
        saw_example = False
        for cells in _sheet_rows(sheet):
            values = [_xlsx_value(cell) for cell in cells]
            if not any(v not in (None, "") and not (isinstance(v, str) and not v.strip()) for v in values):
                blanks += 1
                if blanks > MAX_BLANK_ROWS:
                    raise _too_many_blanks()
                continue
            number = cells[0].row
            if names is None:
                names = _header(values)
                continue
            count += 1
            if count > MAX_ROWS:
                raise _too_many_rows(number)
            if len(values) > len(names) and any(v not in (None, "") for v in values[len(names) :]):
                raise FileRefused(f"Row {number} has values in columns without a name in the header row.")
            row: dict[str, Any] = {}
            dirty = False
            for name, value in zip(names, values, strict=False):
                _check_cell(number, name, value)
                if value.__class__ is str and ("_x" in value or not value.isprintable()):
                    dirty = True  # perhaps: control_notes looks closer
                row[name] = value
            if _is_example(row):
                count -= 1
                saw_example = True
                continue
            yield RawRow(number, row, control_notes(row, excel=True)) if dirty else RawRow(number, row)
        if names is None:
            raise FileRefused("The file is empty.")
        if count == 0:
            raise _no_records(saw_example)
    finally:
        workbook.close()


_UNREADABLE = (
    "This workbook cannot be read: {}. Open it in Excel and save it again as .xlsx, or save it as CSV UTF-8."
)
# Excel never writes a document type declaration; one in a workbook is refused before any XML is parsed
# (defusedxml, which openpyxl uses, forbids entities but lets a bare DTD through).
_DOCTYPE = tuple("<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be"))


def _unreadable(exc: BaseException) -> FileRefused:
    if isinstance(exc, DefusedXmlException):
        reason = "it declares XML entities, which Excel never writes"
    elif isinstance(exc, ParseError):
        reason = "its XML is malformed"
    else:
        reason = "the file is not a readable Excel workbook (.xlsx)"
    return FileRefused(_UNREADABLE.format(reason))


def _check_archive(archive: zipfile.ZipFile) -> None:
    """Refuse a zip that unpacks to more than MAX_XLSX_UNZIPPED_BYTES (by its declared sizes, before
    reading) or whose members declare a DTD."""
    members = archive.infolist()
    if sum(info.file_size for info in members) > MAX_XLSX_UNZIPPED_BYTES:
        raise FileRefused(
            f"The workbook unpacks to more than {MAX_XLSX_UNZIPPED_BYTES // (1024 * 1024)} MB; it cannot be "
            "a file of records this page takes. Save it as CSV UTF-8 or split it."
        )
    overlap = max(len(pattern) for pattern in _DOCTYPE) - 1
    for info in members:
        with archive.open(info) as member:
            tail = b""
            while chunk := member.read(1024 * 1024):
                window = tail + chunk
                if any(pattern in window for pattern in _DOCTYPE):
                    raise FileRefused(
                        _UNREADABLE.format(
                            "it holds an XML document type declaration, which Excel never writes"
                        )
                    )
                tail = window[-overlap:]


def _sheet_rows(sheet: Any) -> Iterator[Any]:
    """The sheet's rows as openpyxl parses them (lazily); a parsing error is the file's, not the portal's."""
    rows = sheet.iter_rows()
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # as in _xlsx_rows
            raise _unreadable(exc) from None
        yield cells


def _records_sheet(sheetnames: list[str]) -> str:
    """The one sheet holding records: every sheet but the template's own code sheets."""
    others = [name for name in sheetnames if name not in CODE_SHEET_NAMES]
    if len(others) == 1:
        return others[0]
    if not others:
        raise FileRefused(
            "The workbook holds only the template's code sheets. Put the records on a sheet of their own "
            "(the template's 'Records' sheet)."
        )
    listed = ", ".join(_short(name, 30) for name in others[:5])
    raise FileRefused(
        f"The workbook has {len(others)} sheets that could hold records ({listed}). Keep the records on "
        f"one sheet and delete the others (the template's '{CODE_SHEET_PREFIX}…' sheets may stay)."
    )


def _xlsx_value(cell: Any) -> Any:
    if getattr(cell, "data_type", None) == "f":
        raise FileRefused(
            f"Cell {cell.coordinate} holds a formula. Imports take values only: copy the sheet and "
            "'Paste special' → 'Values', then upload it again."
        )
    return getattr(cell, "value", None)


# --- JSON -------------------------------------------------------------------------------------------

_SECTIONS = frozenset(section for section, _ in SECTIONS if section != RECORD)  # the API objects
_FIELD_SET = frozenset(FIELDS)


def flatten_record(record: Any) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """An API record object (kwikid/payload.py's shape) as flat fields, with notes on unknown members."""
    values: dict[str, Any] = {}
    notes: list[tuple[str, str, str]] = []
    if not isinstance(record, dict):
        return values, [("record", "Each record must be a JSON object", "error")]

    def take(mapping: dict[str, Any], path: str) -> None:
        for key, value in mapping.items():
            where = f"{path}{key}"
            if key in _FIELD_SET and not isinstance(value, dict | list):
                values[key] = value
            elif isinstance(value, dict) and (
                (key == "disability_info" and path == "basic_details.") or (key in _SECTIONS and not path)
            ):
                take(value, f"{where}.")
            elif not path and key in API_MEMBERS_NOT_KEPT:
                notes.append((key, f"{key} is not kept by the portal and was left out", "warning"))
            elif not path and key == BRANCH_COLUMN and isinstance(value, str):
                values[BRANCH_COLUMN] = value
            else:
                notes.append(
                    (_short(where, 60), f"{_short(where, 60)} is not a field of a KYC record", "error")
                )

    take(record, "")
    return values, notes


def _json_rows(opener: Opener) -> Iterator[RawRow]:
    with opener() as probe:
        head = probe.read(8192)
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    prefix = "item" if start == b"[" else "records.item"
    with opener() as stream:
        first = stream.read(3)
        # A byte order mark is dropped; otherwise the three bytes go back in front (streams need not seek).
        source: Any = stream if first == codecs.BOM_UTF8 else _Rejoined(first, stream)
        count = 0
        default_branch: str | None = None
        saw_records = prefix == "item"
        builder: Any = None
        try:
            for path, event, value in ijson.parse(source, use_float=True):
                if builder is not None:
                    builder.event(event, value)
                    if path == prefix and event == "end_map":
                        count += 1
                        if count > MAX_ROWS:
                            raise _too_many_rows(count)
                        flat, notes = flatten_record(builder.value)
                        if default_branch and BRANCH_COLUMN not in flat:
                            flat[BRANCH_COLUMN] = default_branch
                        for name, cell in flat.items():
                            _check_cell(count, name, cell)
                        notes += control_notes(flat)
                        yield RawRow(count, flat, notes)
                        builder = None
                elif path == prefix:
                    if event != "start_map":
                        raise FileRefused(f"Record {count + 1} is not a JSON object.")
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                elif path == "records" and event == "start_array":
                    saw_records = True
                elif path == BRANCH_COLUMN and event == "string":
                    default_branch = value
                elif path == "" and event not in (
                    "start_map",
                    "end_map",
                    "map_key",
                    "start_array",
                    "end_array",
                ):
                    raise FileRefused("The JSON must be KwikID's request body or its records array.")
        except ijson.JSONError as exc:
            raise FileRefused(
                f"The JSON is not valid ({_short(str(exc), 120)}). Check the file with a JSON validator."
            ) from None
        except UnicodeDecodeError:
            raise FileRefused("The JSON is not UTF-8 text.") from None
    if not saw_records:
        raise FileRefused("The JSON object has no records array (KwikID's request body keeps them there).")
    if count == 0:
        raise FileRefused("The file holds no records.")


class _Rejoined:
    """``head`` followed by the rest of ``stream``, as a readable object (what ijson reads from)."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        if size < 0:
            data, self.head = self.head + self.stream.read(), b""
            return data
        data, self.head = self.head[:size], self.head[size:]
        return data


# --- values -----------------------------------------------------------------------------------------

DATE_FIELDS = frozenset({"dob", "kyc_declaration_date", "kyc_verification_date"})
_TRUE = frozenset({"y", "yes", "true", "1"})
_FALSE = frozenset({"n", "no", "false", "0", ""})
DATE_MESSAGE = "{label} must be a date written as YYYY-MM-DD or DD-MM-YYYY, e.g. 2026-11-02"


def parse_date(value: Any) -> date | str | None:
    """A date from a cell: a date, ISO or CERSAI's DD-MM-YYYY (also with /); "" → None; else the error."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else "bad"
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        if len(text) == 10 and text[4] == "-":
            return date.fromisoformat(text)
        if len(text) == 10 and text[2] in "-/" and text[5] == text[2]:
            return date(int(text[6:]), int(text[3:5]), int(text[:2]))
    except ValueError:
        pass
    return "bad"


def parse_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_whole_number(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "bad"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else "bad"
    text = str(value).strip()
    if not text:
        return None
    return int(text) if text.isdigit() else "bad"


def cell_text(value: Any) -> Any:
    """A text field's cell as text: spreadsheets give PIN codes and mobiles as numbers."""
    if value is None:
        return ""
    if isinstance(value, str):
        # The portal's exports quote text that would start a formula ('=...); the quote is not data.
        if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
            return value[1:]
        return value
    if isinstance(value, bool):
        return value  # left for validation to refuse ("must be text")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return value
