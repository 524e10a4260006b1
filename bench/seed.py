"""Approved KYC records for the benchmark, made fast: encrypted in a tight loop and COPYed in chunks.

Going through ``records.services`` validates every record, moves it through three transitions and writes
their audit events, one record at a time: a million records that way would take longer than the benchmark
itself. Here every row is written as the services would leave an approved record: PII encrypted with
``ckycportal.crypto`` (a fresh Fernet token per value, as the model field does), ``pan_hash`` keyed,
created and submitted by a maker, reviewed by a different user (the maker-checker CHECK constraint holds),
status ``approved``, the payload frozen by approval's own function
(``records.services.record_freeze_values``). The audit events of creation and review are not written: the
upload path never reads them. Columns come from the model (``record_columns``); one this seeder does not
fill gets its model default, so a column added later does not break it (bench/list_bench.py seeds so too).

Runs inside a process where Django is set up; ``seed`` forks helper processes that share the work.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from ckycportal import crypto
from ckycportal.fields import EncryptedTextField
from codelists.selectors import code_book
from records import services as record_services
from records.models import KycRecord, Status

CHUNK_ROWS = 20_000  # rows per COPY (one transaction each); a helper streams them, never holds more

# The names of the seeded records; bench/list_bench.py seeds and searches the same ones.
FIRST_NAMES = ("RAVI", "ANITA", "SURESH", "PRIYA", "ARJUN", "MEERA", "VIKRAM", "LATA", "ROHAN", "NEHA")
MIDDLE_NAMES = ("KUMAR", "", "DEVI", "PRASAD", "", "LAL", "RANI", "")
_REL_FIRST = ("SURESH", "RAMESH", "GOPAL", "MOHAN", "KIRAN", "ASHOK")
# Real PINs of each city (the PIN master refuses a PIN that does not exist or lies in another state).
_CITIES = (
    ("Mumbai", "MH", ("400001", "400002", "400003", "400004", "400005")),
    ("Pune", "MH", ("411001", "411002", "411004", "411005")),
    ("Delhi", "DL", ("110001", "110002", "110003", "110005")),
    ("Chennai", "TN", ("600001", "600002", "600003", "600004")),
)
_STREETS = ("Marine Drive", "FC Road", "MG Road", "Anna Salai", "Park Street", "Linking Road")


@dataclass(frozen=True)
class Owners:
    """Who the records belong to: their branch, their maker and their checker (never the same user)."""

    branch_id: int
    maker_id: int
    checker_id: int


def pan(i: int) -> str:
    """The PAN of record number i (an individual's: its fourth letter is P)."""
    letters = "".join(chr(65 + (i // 26**k) % 26) for k in range(3))
    return f"{letters}P{chr(65 + (i // 26**3) % 26)}{i % 10_000:04d}{chr(65 + i % 26)}"


def plain_record(i: int, prefix: str) -> dict[str, Any]:
    """Record number i as a maker would have entered it: complete, valid, different from its neighbours."""
    city, state, pin = _CITIES[i % len(_CITIES)]
    other_city, other_state, other_pin = _CITIES[(i + 1) % len(_CITIES)]
    same = "Y" if i % 3 == 0 else "N"
    return {
        "kyc_ref_no": f"{prefix}{i:08d}",
        "pan": pan(i),
        "applicant_name_title": "MR" if i % 2 else "MS",
        "applicant_first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
        "applicant_middle_name": MIDDLE_NAMES[i % len(MIDDLE_NAMES)],
        "applicant_rel_details_flag": "FATHER",
        "applicant_rel_name_title": "MR",
        "applicant_rel_first_name": _REL_FIRST[i % len(_REL_FIRST)],
        "applicant_rel_middle_name": "",
        "gender": "M" if i % 2 else "F",
        "dob": date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
        "differently_abled_flag": False,
        "impairment_type": "",
        "impairment_percentage": None,
        "udid_number": "",
        "poa_document": "02",
        "poa_document_number": f"K{i % 10_000_000:07d}",
        "poa_address_line_1": f"{1 + i % 200} {_STREETS[i % len(_STREETS)]}, Flat {1 + i % 9}B",
        "poa_vtc": city,
        "poa_state": state,
        "poa_country": "IN",
        "poa_pin_code": pin[i % len(pin)],
        "current_address_same_as_poa_address": same,
        "current_address_line_1": "" if same == "Y" else f"{1 + i % 90} {_STREETS[(i + 2) % len(_STREETS)]}",
        "current_vtc": "" if same == "Y" else other_city,
        "current_state": "" if same == "Y" else other_state,
        "current_country": "" if same == "Y" else "IN",
        "current_pin_code": "" if same == "Y" else other_pin[(i + 7) % len(other_pin)],
        "mobile_isd": "91",
        "mobile_number": f"9{i % 1_000_000_000:09d}",
        "kyc_declaration_date": date(2026, 11, 2),
        "kyc_declaration_place": city,
        "kyc_verification_date": date(2026, 11, 3),
        "kyc_type": "01",
        "kyc_verifier_name": "Anita Deshpande",
        "kyc_verifier_designation": "Branch Officer",
        "kyc_verifier_branch": "Fort, Mumbai",
        "kyc_verifier_employee_code": "EMP-0042",
        "kyc_type_of_document_submitted": "01",
    }


def record_columns(*, with_id: bool = False) -> list[tuple[str, str, bool]]:
    """(field name, column, encrypted?) of every column of the records table as the model has it now, so a
    column added later is COPYed too; the id only ``with_id`` (else it comes from its sequence)."""
    return [
        (f.name, f.column, isinstance(f, EncryptedTextField))
        for f in KycRecord._meta.concrete_fields
        if with_id or not f.primary_key
    ]


def record_defaults() -> dict[str, Any]:
    """Every field's model default: what a seeder writes in a column it does not fill (one added since)."""
    return {f.name: f.get_default() for f in KycRecord._meta.concrete_fields}


def column_value(value: Any, encrypted: bool) -> Any:
    """``value`` as its column holds it: a fresh Fernet token (of a date's ISO text) if ``encrypted``."""
    if encrypted and value not in (None, ""):
        return crypto.encrypt(value.isoformat() if isinstance(value, date) else value)
    return value


def _rows(start: int, stop: int, prefix: str, owners: Owners, base: datetime) -> Iterator[list[Any]]:
    columns = record_columns()
    defaults = record_defaults()
    # Approval's own freezing of the payload (records.services), with the stamp read before the code book.
    today = timezone.localdate()
    stamp = record_services.check_stamp(today)
    codes = code_book()
    for i in range(start, stop):
        data = plain_record(i, prefix)
        data.update(record_services.record_freeze_values(data, stamp=stamp, today=today, codes=codes))
        reviewed_at = base + timedelta(microseconds=i)  # the upload order is reviewed_at, then id
        data.update(
            branch=owners.branch_id,
            status=Status.APPROVED,
            pan_hash=crypto.keyed_hash(data["pan"]),
            created_by=owners.maker_id,
            submitted_by=owners.maker_id,
            submitted_at=base,
            reviewed_by=owners.checker_id,
            reviewed_at=reviewed_at,
            return_reason="",
            upload_message="",
            uploaded_at=None,
            relationship_closed_on=None,
            created_at=base,
            updated_at=reviewed_at,
        )
        # A column the upload path does not read (added since) gets its model default.
        yield [column_value(data[name] if name in data else defaults[name], enc) for name, _c, enc in columns]


def conninfo() -> dict[str, Any]:
    """psycopg's keywords for Django's default database (a forked helper's own connection)."""
    db = settings.DATABASES["default"]
    info = {"dbname": db["NAME"], "user": db["USER"], "host": db["HOST"], "port": db["PORT"]}
    if db.get("PASSWORD"):
        info["password"] = db["PASSWORD"]
    return {k: v for k, v in info.items() if v not in (None, "")}


def _copy_chunk(args: tuple[int, int, str, Owners, datetime]) -> int:
    start, stop, prefix, owners, base = args
    names = ", ".join(column for _name, column, _enc in record_columns())
    with (
        psycopg.connect(**conninfo()) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY records_kycrecord ({names}) FROM STDIN") as copy,
    ):
        for row in _rows(start, stop, prefix, owners, base):
            copy.write_row(row)
    return stop - start


def seed(count: int, *, prefix: str, owners: Owners, processes: int = 2) -> float:
    """Insert ``count`` approved records and ANALYZE the table; returns the seconds it took."""
    started = time.perf_counter()
    base = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    chunks = [
        (start, min(start + CHUNK_ROWS, count), prefix, owners, base) for start in range(0, count, CHUNK_ROWS)
    ]
    connections.close_all()  # a forked helper must not share the parent's database socket
    if processes > 1 and len(chunks) > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            done = sum(pool.imap_unordered(_copy_chunk, chunks))
    else:
        done = sum(_copy_chunk(chunk) for chunk in chunks)
    assert done == count
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) records_kycrecord")  # what autovacuum would soon do anyway
    return time.perf_counter() - started
