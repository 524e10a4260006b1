"""A local stand-in for KwikID's CKYC upload and search endpoints, with fault controls for tests and demos.

The search plays the registry: every PAN accepted in an upload is registered ``register_after_seconds``
after its acceptance, with a KIN derived from the PAN (``kin_for``) and the day of registration (in India's
time) as its KYC date. Until then, and for a PAN never uploaded, the answer is "not found".

Standard library only on purpose: the stand-in must start anywhere (CI, a laptop, staging) without the
portal's dependencies, and it must not share code paths with the client it is used to test.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

UPLOAD_PATH = "/ckycportalapi/ckyc-upload/"
SEARCH_PATH = "/api/ckyc/search"
FAULTS_PATH = "/_standin/faults"
STATS_PATH = "/_standin/stats"
RESET_PATH = "/_standin/reset"

DEFAULT_TOKEN = "demo-token"
# Far above any real batch; only there so a runaway client cannot make the stand-in allocate without bound.
MAX_BODY_BYTES = 64 * 1024 * 1024

_PAN_RE = re.compile(r"[A-Z]{5}[0-9]{4}[A-Z]")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# The registry's dates are India's: a KYC date is the day in IST, whatever the host's clock zone.
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
SEARCH_SHAPES = ("flat", "nested", "ckyc_number")
# How a 200 lists per-record results when some records fail: a list under "records" (naming each
# kyc_ref_no), a mapping by position under "results", or a mapping by kyc_ref_no under "data".
RECORD_RESULTS_SHAPES = ("list", "index", "ref")
RECORD_FAILURE_REASON = "Face match failed: the photo does not match the document."
PREREGISTERED_KYC_DATE = "2019-04-01"
# A few bytes of a JPEG, base64-encoded as the registry sends the customer's photo (never to be kept).
_PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))).decode()

_TOP_LEVEL_REQUIRED = ("fi_code", "version", "region_code", "username", "branch_code")

# An extra check of an upload's records (off unless given): the records of a body that passed
# ``validate_upload`` -> detail keyed by field path ("records[3].pan"), empty when all are valid. The
# benchmark gives the portal's own rules, so that accepting a batch costs what a real intake's checks cost.
RecordCheck = Callable[[list[Any]], dict[str, list[str]]]


class _Section:
    """What the stand-in checks in one nested object of a record (per openapi.yaml)."""

    __slots__ = ("choices", "dates", "required")

    def __init__(
        self,
        required: tuple[str, ...] = (),
        choices: dict[str, tuple[str, ...]] | None = None,
        dates: tuple[str, ...] = (),
    ) -> None:
        self.required = required
        self.choices = choices or {}
        self.dates = dates


_SECTIONS: dict[str, _Section] = {
    "basic_details": _Section(
        required=(
            "applicant_name_title",
            "applicant_first_name",
            "applicant_rel_details_flag",
            "applicant_rel_first_name",
            "gender",
            "dob",
        ),
        choices={"applicant_rel_details_flag": ("FATHER", "SPOUSE"), "gender": ("M", "F", "T")},
        dates=("dob",),
    ),
    "poa": _Section(
        required=(
            "poa_document",
            "poa_document_number",
            "poa_address_line_1",
            "poa_vtc",
            "poa_state",
            "poa_country",
            "poa_pin_code",
        ),
    ),
    "current_address": _Section(
        required=("current_address_same_as_poa_address",),
        choices={"current_address_same_as_poa_address": ("Y", "N")},
    ),
    "contact_details": _Section(),
    "kyc_verification_details": _Section(
        required=(
            "kyc_declaration_date",
            "kyc_declaration_place",
            "kyc_verification_date",
            "kyc_type",
            "kyc_verifier_name",
            "kyc_verifier_designation",
            "kyc_verifier_branch",
            "kyc_verifier_employee_code",
        ),
        dates=("kyc_declaration_date", "kyc_verification_date"),
    ),
}

_REQUIRED = "This field is required."
_BLANK = "This field may not be blank."
_NOT_STRING = "Must be a string."
_NOT_OBJECT = "Must be an object."
_BAD_DATE = "Enter a valid date in YYYY-MM-DD format."
_BAD_PAN = "Enter a valid PAN (5 letters, 4 digits, 1 letter)."


def _string_error(value: Any) -> str | None:
    """Why value is not a usable required string, or None when it is."""
    if value is None:
        return _REQUIRED
    if not isinstance(value, str):
        return _NOT_STRING
    if not value.strip():
        return _BLANK
    return None


def _date_ok(value: str) -> bool:
    """True for a real calendar date written YYYY-MM-DD (fromisoformat alone also accepts other ISO forms)."""
    if not _DATE_RE.fullmatch(value):
        return False
    try:
        datetime.date(int(value[:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def validate_upload(payload: Any) -> tuple[dict[str, list[str]], list[str]]:
    """Validate an upload body; returns (detail keyed by field path, the kyc_ref_no of each record).

    Messages never repeat submitted values: they are PII and would otherwise end up in the portal's stored
    error bodies.
    """
    errors: dict[str, list[str]] = {}
    refs: list[str] = []
    if not isinstance(payload, dict):
        errors["body"] = ["Request body must be a JSON object."]
        return errors, refs
    for name in _TOP_LEVEL_REQUIRED:
        problem = _string_error(payload.get(name))
        if problem:
            errors[name] = [problem]
    records = payload.get("records")
    if records is None:
        errors["records"] = [_REQUIRED]
        return errors, refs
    if not isinstance(records, list):
        errors["records"] = ["Must be a list."]
        return errors, refs
    if not records:
        errors["records"] = ["Ensure this field has at least 1 item."]
        return errors, refs

    first_seen: dict[str, int] = {}
    for index, record in enumerate(records):
        prefix = f"records[{index}]"
        if not isinstance(record, dict):
            errors[prefix] = [_NOT_OBJECT]
            continue
        ref = record.get("kyc_ref_no")
        problem = _string_error(ref)
        if problem:
            errors[prefix + ".kyc_ref_no"] = [problem]
        elif isinstance(ref, str):
            refs.append(ref)
            earlier = first_seen.setdefault(ref, index)
            if earlier != index:
                errors[prefix + ".kyc_ref_no"] = [
                    f"Duplicate kyc_ref_no within this request (first at records[{earlier}])."
                ]
        pan = record.get("pan")
        problem = _string_error(pan)
        if problem:
            errors[prefix + ".pan"] = [problem]
        elif isinstance(pan, str) and not _PAN_RE.fullmatch(pan):
            errors[prefix + ".pan"] = [_BAD_PAN]
        # The integration guide's two members (the API page's sample has neither): checked when present.
        count = record.get("number_of_identity")
        if "number_of_identity" in record and (
            not isinstance(count, int) or isinstance(count, bool) or count < 1
        ):
            errors[prefix + ".number_of_identity"] = ["Must be an integer of at least 1."]
        if "additional_documents" in record and not isinstance(record["additional_documents"], list):
            errors[prefix + ".additional_documents"] = ["Must be a list."]
        for section_name, section in _SECTIONS.items():
            section_value = record.get(section_name)
            if section_value is None:
                errors[f"{prefix}.{section_name}"] = [_REQUIRED]
                continue
            if not isinstance(section_value, dict):
                errors[f"{prefix}.{section_name}"] = [_NOT_OBJECT]
                continue
            for key in section.required:
                problem = _string_error(section_value.get(key))
                if problem:
                    errors[f"{prefix}.{section_name}.{key}"] = [problem]
            for key, allowed in section.choices.items():
                value = section_value.get(key)
                if isinstance(value, str) and value.strip() and value not in allowed:
                    errors[f"{prefix}.{section_name}.{key}"] = ["Must be one of: " + ", ".join(allowed) + "."]
            for key in section.dates:
                value = section_value.get(key)
                if isinstance(value, str) and value.strip() and not _date_ok(value):
                    errors[f"{prefix}.{section_name}.{key}"] = [_BAD_DATE]
    return errors, refs


def sample_record(kyc_ref_no: str = "REF-0001", pan: str = "ABCDE1234F") -> dict[str, Any]:
    """A record the stand-in accepts, shaped like the sample on KwikID's page (fake identity)."""
    return {
        "kyc_ref_no": kyc_ref_no,
        "pan": pan,
        "basic_details": {
            "applicant_name_title": "Mr",
            "applicant_first_name": "Test",
            "applicant_middle_name": "",
            "applicant_rel_details_flag": "FATHER",
            "applicant_rel_name_title": "Mr",
            "applicant_rel_first_name": "Parent",
            "applicant_rel_middle_name": "",
            "gender": "M",
            "dob": "1990-01-31",
            "disability_info": {"differently_abled_flag": False},
        },
        "poa": {
            "poa_document": "AADHAAR",
            "poa_document_number": "1234",
            "poa_address_line_1": "1 Test Street",
            "poa_vtc": "Mumbai",
            "poa_state": "MH",
            "poa_country": "IN",
            "poa_pin_code": "400001",
        },
        "current_address": {"current_address_same_as_poa_address": "Y"},
        "contact_details": {"mobile_isd": "91", "mobile_number": "9000000000"},
        "kyc_verification_details": {
            "kyc_declaration_date": "2024-01-15",
            "kyc_declaration_place": "Mumbai",
            "kyc_verification_date": "2024-01-15",
            "kyc_type": "NORMAL",
            "kyc_verifier_name": "Verifier",
            "kyc_verifier_designation": "Officer",
            "kyc_verifier_branch": "BR001",
            "kyc_verifier_employee_code": "E001",
            "kyc_type_of_document_submitted": "CERTIFIED_COPIES",
        },
    }


def sample_payload(count: int = 1, prefix: str = "REF-") -> dict[str, Any]:
    """An upload body with count valid records whose kyc_ref_no are prefix + a zero-padded index."""
    return {
        "fi_code": "IN0000",
        "version": "V1.3",
        "region_code": "MUM",
        "username": "ckyc-user",
        "branch_code": "BR001",
        "records": [sample_record(f"{prefix}{index:06d}") for index in range(count)],
    }


def _default_fail() -> dict[str, Any]:
    return {"status": 500, "body": None, "content_type": None, "retry_after": None, "headers": {}}


def _no_faults() -> dict[str, Any]:
    return {
        "fail_next": 0,
        "fail": _default_fail(),
        "delay": 0.0,
        "latency_ms": None,
        "drop_next": 0,
        "hang_next": 0,
        "hang_seconds": 60.0,
        "accept_then_drop_next": 0,
        # The search (see the module docstring and the README's stand-in section).
        "register_after_seconds": None,  # None: the value the stand-in was started with
        "search_shape": "flat",
        "never_register": [],  # PANs accepted but never registered
        "preregistered": [],  # PANs registered already, before any upload, with an older KYC date
        "preregistered_kyc_date": PREREGISTERED_KYC_DATE,
        # Every PAN searched for is registered today, uploaded here or not (benchmarks seed records
        # straight into the portal's database, so the stand-in never saw them accepted).
        "register_any": False,
        "search_status": None,  # every search answers this status while set (401, 500, ...)
        "search_delay": 0.0,  # seconds each search waits before answering (to outlive a read timeout)
        "search_unreadable": False,  # a 200 whose body is no known shape
        "search_daily_cap": None,  # searches a day (IST) before 429 with Retry-After
        # Uploads: kyc_ref_no that a 200 marks as failed in per-record results (not accepted), and how.
        "record_failures": [],
        "record_results_shape": "list",
    }


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("Must be a non-negative integer.")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError("Must be a non-negative number.")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Must be a string.")
    return value


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError("Must be an HTTP status code between 200 and 599.")
    return value


def _retry_after(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("Must be a string or a number of seconds.")
    return value if isinstance(value, str) else f"{value:g}"


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and "\r" not in k + v
        for k, v in value.items()
    ):
        raise ValueError("Must be an object of single-line string header values.")
    return dict(value)


def _optional_status(value: Any) -> int | None:
    return None if value is None else _status(value)


def _optional_count(value: Any) -> int | None:
    return None if value is None else _count(value)


def _optional_seconds(value: Any) -> float | None:
    return None if value is None else _seconds(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Must be true or false.")
    return value


def _shape(value: Any) -> str:
    if value not in SEARCH_SHAPES:
        raise ValueError("Must be one of: " + ", ".join(SEARCH_SHAPES) + ".")
    return str(value)


def _pans(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _PAN_RE.fullmatch(v) for v in value):
        raise ValueError("Must be a list of PANs (upper case).")
    return list(value)


def _refs(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("Must be a list of kyc_ref_no.")
    return list(value)


def _results_shape(value: Any) -> str:
    if value not in RECORD_RESULTS_SHAPES:
        raise ValueError("Must be one of: " + ", ".join(RECORD_RESULTS_SHAPES) + ".")
    return str(value)


def _iso_date(value: Any) -> str:
    if not isinstance(value, str) or not _date_ok(value):
        raise ValueError(_BAD_DATE)
    return value


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("Must be a non-empty string.")
    return value


_FAULT_PARSERS = {
    "fail_next": _count,
    "status": _status,
    "body": _text,
    "content_type": _text,
    "retry_after": _retry_after,
    "headers": _headers,
    "delay": _seconds,
    "latency_ms": _seconds,
    "drop_next": _count,
    "hang_next": _count,
    "hang_seconds": _seconds,
    "accept_then_drop_next": _count,
    "token": _token,
    "register_after_seconds": _optional_seconds,
    "search_shape": _shape,
    "never_register": _pans,
    "preregistered": _pans,
    "preregistered_kyc_date": _iso_date,
    "register_any": _flag,
    "search_status": _optional_status,
    "search_delay": _seconds,
    "search_unreadable": _flag,
    "search_daily_cap": _optional_count,
    "record_failures": _refs,
    "record_results_shape": _results_shape,
}
_FAIL_KEYS = ("status", "body", "content_type", "retry_after", "headers")


class _Action:
    """What to do with one upload call, decided atomically from the fault settings."""

    __slots__ = ("fail", "hang_seconds", "kind", "wait")

    def __init__(self, kind: str, wait: float, fail: dict[str, Any] | None = None, hang: float = 0.0) -> None:
        self.kind = kind  # "process", "fail", "drop", "hang" or "accept_then_drop"
        self.wait = wait
        self.fail = fail
        self.hang_seconds = hang


class _State:
    """Token, faults and bookkeeping shared by every handler thread; all access goes through one lock."""

    def __init__(
        self,
        token: str,
        latency_ms: float,
        register_after_seconds: float = 0.0,
        record_check: RecordCheck | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.record_check = record_check
        self.stopping = threading.Event()
        self.token = token
        self.base_latency_ms = latency_ms
        self.base_register_after_seconds = register_after_seconds
        self.faults = _no_faults()
        self._clear_stats()

    def _clear_stats(self) -> None:
        self.requests = 0
        # Seconds spent reading, checking and accepting upload bodies (after any latency): what the
        # benchmark subtracts from a client's time to leave the client's own.
        self.service_seconds = 0.0
        self.accepted_records = 0
        self.duplicates = 0
        self.accepted: dict[str, int] = {}
        self.last_request: dict[str, Any] | None = None
        self.last_body = b""
        # PAN -> when (time.time()) an upload holding it was first accepted: the registry's queue.
        self.accepted_pans: dict[str, float] = {}
        self.searches = 0
        self.search_answers: dict[str, int] = {}
        self.searches_by_day: dict[str, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.faults = _no_faults()
            self._clear_stats()

    def set_faults(self, changes: Any) -> dict[str, Any]:
        """Validate and apply fault settings; a new fail_next starts from the default failure response."""
        if not isinstance(changes, dict):
            raise _FaultError({"body": ["Request body must be a JSON object."]})
        parsed: dict[str, Any] = {}
        problems: dict[str, list[str]] = {}
        for key, value in changes.items():
            parser = _FAULT_PARSERS.get(key)
            if parser is None:
                problems[key] = ["Unknown fault setting."]
                continue
            try:
                parsed[key] = parser(value)
            except ValueError as exc:
                problems[key] = [str(exc)]
        if problems:
            raise _FaultError(problems)
        with self.lock:
            if "fail_next" in parsed:
                self.faults["fail"] = _default_fail()
            for key, value in parsed.items():
                if key == "token":
                    self.token = value
                elif key in _FAIL_KEYS:
                    self.faults["fail"][key] = value
                else:
                    self.faults[key] = value
            return self._faults_snapshot()

    def _faults_snapshot(self) -> dict[str, Any]:
        snapshot = dict(self.faults)
        snapshot["fail"] = dict(snapshot["fail"], headers=dict(snapshot["fail"]["headers"]))
        return snapshot

    def begin_upload(
        self, client: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> _Action:
        """Count the call, remember it for tests, and consume one pending fault (most disruptive first)."""
        with self.lock:
            self.requests += 1
            self.last_request = {"client": client, "method": method, "path": path, "headers": headers}
            self.last_body = body
            faults = self.faults
            latency = faults["latency_ms"] if faults["latency_ms"] is not None else self.base_latency_ms
            wait = faults["delay"] + latency / 1000.0
            if faults["drop_next"]:
                faults["drop_next"] -= 1
                return _Action("drop", wait)
            if faults["hang_next"]:
                faults["hang_next"] -= 1
                return _Action("hang", wait, hang=faults["hang_seconds"])
            if faults["fail_next"]:
                faults["fail_next"] -= 1
                return _Action("fail", wait, fail=dict(faults["fail"]))
            if faults["accept_then_drop_next"]:
                faults["accept_then_drop_next"] -= 1
                return _Action("accept_then_drop", wait)
            return _Action("process", wait)

    def token_ok(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        with self.lock:
            token = self.token
        # Constant-time compare: cheap, and it keeps the stand-in from teaching bad habits.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        )

    def accept(self, refs: list[str], pans: list[str] | None = None) -> None:
        with self.lock:
            now = time.time()
            for pan in pans or ():
                self.accepted_pans.setdefault(pan, now)
            self.accepted_records += len(refs)
            accepted = self.accepted
            for ref in refs:
                count = accepted.get(ref, 0) + 1
                accepted[ref] = count
                if count == 2:
                    self.duplicates += 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            last = None if self.last_request is None else dict(self.last_request)
            raw = self.last_body
            snapshot: dict[str, Any] = {
                "requests": self.requests,
                "service_seconds": self.service_seconds,
                "accepted_records": self.accepted_records,
                "duplicates": self.duplicates,
                "accepted": dict(self.accepted),
                "last_request": last,
                "searches": self.searches,
                "search_answers": dict(self.search_answers),
                "uploaded_pans": len(self.accepted_pans),
            }
        if last is not None:
            # Decoded here, not per request, to keep the upload path cheap.
            try:
                last["body"] = json.loads(raw)
            except ValueError:
                last["body"] = raw.decode("utf-8", errors="replace")
        return snapshot

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the stand-in stops so no handler outlives it for long."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def begin_search(self) -> tuple[float, int | None]:
        """Count one search; returns how long it waits and the status a fault forces (None: none)."""
        with self.lock:
            self.searches += 1
            return self.faults["search_delay"], self.faults["search_status"]

    def count_answer(self, kind: str) -> None:
        with self.lock:
            self.search_answers[kind] = self.search_answers.get(kind, 0) + 1

    def take_daily_search(self, now: datetime.datetime) -> float | None:
        """Count a search against today's cap; seconds until the next day (IST) when the cap is reached."""
        today = now.astimezone(IST)
        key = today.date().isoformat()
        with self.lock:
            cap = self.faults["search_daily_cap"]
            used = self.searches_by_day.get(key, 0)
            if cap is not None and used >= cap:
                tomorrow = datetime.datetime.combine(
                    today.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=IST
                )
                return max(1.0, (tomorrow - today).total_seconds())
            self.searches_by_day[key] = used + 1
            return None

    def record_failures(self) -> tuple[set[str], str]:
        """The kyc_ref_no an upload's 200 marks as failed, and the shape of its per-record results."""
        with self.lock:
            return set(self.faults["record_failures"]), self.faults["record_results_shape"]

    def search_settings(self) -> tuple[str, bool]:
        with self.lock:
            return self.faults["search_shape"], self.faults["search_unreadable"]

    def registration(self, pan: str, now: float) -> datetime.date | None:
        """The KYC date the registry holds for this PAN at ``now``, or None when it holds none yet."""
        with self.lock:
            faults = self.faults
            if pan in faults["preregistered"]:
                return datetime.date.fromisoformat(faults["preregistered_kyc_date"])
            accepted_at = self.accepted_pans.get(pan)
            if pan in faults["never_register"]:
                return None
            if accepted_at is None:
                return datetime.datetime.now(IST).date() if faults["register_any"] else None
            delay = faults["register_after_seconds"]
            if delay is None:
                delay = self.base_register_after_seconds
        registered_at = accepted_at + delay
        if now < registered_at:
            return None
        return datetime.datetime.fromtimestamp(registered_at, IST).date()


def record_results(refs: list[str], failed: list[bool], shape: str) -> dict[str, Any]:
    """The per-record results a 200 carries when some of its records failed (KwikID's guide promises
    "success and error responses for each submitted record" without showing their shape)."""
    entries = [
        {"kyc_ref_no": ref, "status": "failed", "error": RECORD_FAILURE_REASON}
        if no
        else {"kyc_ref_no": ref, "status": "success"}
        for ref, no in zip(refs, failed, strict=True)
    ]
    if shape == "index":
        return {
            "results": {
                str(i): {k: v for k, v in e.items() if k != "kyc_ref_no"} for i, e in enumerate(entries)
            }
        }
    if shape == "ref":
        return {"data": {e["kyc_ref_no"]: {k: v for k, v in e.items() if k != "kyc_ref_no"} for e in entries}}
    return {"records": entries}


def kin_for(pan: str) -> str:
    """The 14-digit KIN the stand-in's registry gives a PAN: the same for the same PAN, every run."""
    digest = int.from_bytes(hashlib.sha256(pan.encode()).digest()[:8], "big")
    return "5" + f"{digest % 10**13:013d}"


def _masked_pan(pan: str) -> str:
    return "XXXXXX" + pan[-4:]


def search_answer(shape: str, pan: str, kyc_date: datetime.date | None) -> tuple[int, dict[str, Any]]:
    """The status and body the stand-in answers a search with, in one of the shapes gateways use."""
    if shape == "flat":
        if kyc_date is None:
            return 200, {"CKYC_NO": "", "REMARKS": "Record does not exist"}
        written = kyc_date.strftime("%d-%m-%Y")
        return 200, {
            "CKYC_NO": kin_for(pan),
            "NAME": "MR TEST CUSTOMER",
            "FATHERS_NAME": "MR TEST PARENT",
            "AGE": "34",
            "KYC_DATE": written,
            "UPDATED_DATE": written,
            "ID_LIST": [{"TYPE": "C", "ID_NO": _masked_pan(pan), "STATUS": "03"}],
            "PHOTO": _PHOTO,
            "REMARKS": "",
        }
    if shape == "nested":
        if kyc_date is None:
            return 200, {
                "data": {"ckyc_search_data": None},
                "success": False,
                "status_code": 404,
                "message": "No record found",
                "message_code": "record_not_found",
            }
        return 200, {
            "data": {
                "ckyc_search_data": {
                    "ckyc_id": kin_for(pan),
                    "full_name": "MR TEST CUSTOMER",
                    "kyc_date": kyc_date.isoformat(),
                    "updated_date": kyc_date.isoformat(),
                    "photo": _PHOTO,
                }
            },
            "success": True,
            "status_code": 200,
            "message": "Record found",
            "message_code": "success",
        }
    if kyc_date is None:
        return 422, {"error": "record not found"}
    return 200, {
        "ckyc_number": kin_for(pan),
        "name": "MR TEST CUSTOMER",
        "dob": "31-01-1990",
        "pincode": "400001",
        "kyc_date": kyc_date.strftime("%d-%m-%Y"),
    }


def _search_problems(request: Any) -> dict[str, list[str]]:
    if not isinstance(request, dict):
        return {"body": ["Request body must be a JSON object."]}
    problems: dict[str, list[str]] = {}
    if request.get("id_type") != "C":
        problems["id_type"] = ["The stand-in searches by PAN only (id_type C)."]
    id_no = request.get("id_no")
    if not isinstance(id_no, str) or not _PAN_RE.fullmatch(id_no):
        problems["id_no"] = [_BAD_PAN]
    return problems


class _FaultError(Exception):
    def __init__(self, detail: dict[str, list[str]]) -> None:
        super().__init__("invalid fault settings")
        self.detail = detail


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler must never block interpreter exit
    block_on_close = False
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], state: _State, access_log: bool) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.access_log = access_log
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(): a reverse DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open socket so keep-alive handler threads wake up and exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, reset) is routine here; anything else is a bug worth a trace.
        if isinstance(sys.exc_info()[1], OSError):
            return
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses one connection per session
    server_version = "KwikIDStandIn/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid the Nagle/delayed-ACK stall
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status are ever logged (and only on request): bodies hold PII.
        if self.server.access_log:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # --- plumbing -------------------------------------------------------------------------------------

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _abort(self) -> None:
        """Close the connection without answering: the client cannot tell whether the upload was taken."""
        self.close_connection = True

    def _read_body(self) -> bytes | None:
        """Read the whole request body so the keep-alive stream stays in step; None if already answered."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send_json(411, {"detail": {}, "message": "Content-Length required"})
            return None
        raw_length = self.headers.get("Content-Length", "0")
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send_json(400, {"detail": {}, "message": "Invalid Content-Length"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"detail": {}, "message": "Request body too large"})
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body
            return None
        return body

    # --- routes ---------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self._path()
        if path == STATS_PATH:
            self._send_json(200, self.server.state.stats())
        elif path in (UPLOAD_PATH, SEARCH_PATH, FAULTS_PATH, RESET_PATH):
            self._send_json(405, {"detail": {}, "message": "Method not allowed"}, {"Allow": "POST"})
        else:
            self._send_json(404, {"detail": {}, "message": "Not found"})

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = self._path()
        if path == UPLOAD_PATH:
            self._upload(path, body)
        elif path == SEARCH_PATH:
            self._search(body)
        elif path == FAULTS_PATH:
            self._faults(body)
        elif path == RESET_PATH:
            self.server.state.reset()
            self._send_json(200, {"message": "reset"})
        elif path == STATS_PATH:
            self._send_json(405, {"detail": {}, "message": "Method not allowed"}, {"Allow": "GET"})
        else:
            self._send_json(404, {"detail": {}, "message": "Not found"})

    def _faults(self, body: bytes) -> None:
        try:
            changes = json.loads(body) if body else {}
        except ValueError:
            self._send_json(400, {"detail": {"body": ["Malformed JSON."]}, "message": "Invalid faults"})
            return
        try:
            faults = self.server.state.set_faults(changes)
        except _FaultError as exc:
            self._send_json(400, {"detail": exc.detail, "message": "Invalid faults"})
            return
        self._send_json(200, {"faults": faults})

    def _upload(self, path: str, body: bytes) -> None:
        state = self.server.state
        client = "{}:{}".format(*self.client_address[:2])  # lets tests see keep-alive reuse
        action = state.begin_upload(client, self.command, path, dict(self.headers.items()), body)
        state.sleep(action.wait)
        if action.kind == "drop":
            self._abort()
            return
        if action.kind == "hang":
            state.sleep(action.hang_seconds)
            self._abort()
            return
        if action.kind == "fail":
            assert action.fail is not None
            self._send_fail(action.fail)
            return
        started = time.perf_counter()
        status, answer, headers = self._process(body)
        with state.lock:
            state.service_seconds += time.perf_counter() - started
        if action.kind == "accept_then_drop":
            self._abort()  # processed (and counted if valid), but the answer is lost on the way back
            return
        self._send_json(status, answer, headers)

    def _process(self, body: bytes) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        """Authenticate, validate and accept one upload: all records or none."""
        state = self.server.state
        refused = self._unauthorized()
        if refused is not None:
            return refused
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, {"detail": {"body": ["Malformed JSON."]}, "message": "Validation failed"}, None
        errors, refs = validate_upload(payload)
        if not errors and state.record_check is not None:
            errors = state.record_check(payload["records"])
        if errors:
            return 400, {"detail": errors, "message": "Validation failed"}, None
        failing, shape = state.record_failures()
        failed = [ref in failing for ref in refs]
        state.accept(
            [ref for ref, no in zip(refs, failed, strict=True) if not no],
            [record["pan"] for record, no in zip(payload["records"], failed, strict=True) if not no],
        )
        accepted = failed.count(False)
        noun = "record" if accepted == 1 else "records"
        answer: dict[str, Any] = {
            "message": f"{accepted} {noun} accepted for processing",
            "status": "success",
        }
        if any(failed):
            answer.update(record_results(refs, failed, shape))
        return 200, answer, None

    def _unauthorized(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        authorization = self.headers.get("Authorization")
        if self.server.state.token_ok(authorization):
            return None
        reason = "Authorization header missing." if not authorization else "Invalid or expired bearer token."
        return (
            401,
            {"detail": {"authorization": reason}, "message": "Invalid token"},
            {"WWW-Authenticate": "Bearer"},
        )

    def _search(self, body: bytes) -> None:
        """Answer one CKYC search: as the registry would at this moment, unless a fault says otherwise."""
        state = self.server.state
        delay, forced_status = state.begin_search()
        state.sleep(delay)
        refused = self._unauthorized()
        if refused is not None:
            state.count_answer("unauthorized")
            self._send_json(*refused)
            return
        if forced_status is not None:
            state.count_answer(f"status_{forced_status}")
            fail = dict(_default_fail(), status=forced_status)
            if forced_status in (401, 403):
                fail["body"] = json.dumps(
                    {"detail": {"authorization": "Invalid token."}, "message": "Invalid token"}
                )
            self._send_fail(fail)
            return
        retry_after = state.take_daily_search(datetime.datetime.now(IST))
        if retry_after is not None:
            state.count_answer("capped")
            self._send_json(
                429,
                {"detail": {}, "message": "Daily search limit reached"},
                {"Retry-After": f"{int(retry_after)}"},
            )
            return
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        problems = _search_problems(request)
        if problems:
            state.count_answer("invalid")
            self._send_json(400, {"detail": problems, "message": "Validation failed"})
            return
        pan = request["id_no"]
        shape, unreadable = state.search_settings()
        if unreadable:
            state.count_answer("unreadable")
            # Quotes the PAN, as a confused gateway might: the portal must mask it before keeping the body.
            self._send_json(200, {"status": "processing", "id_no": pan, "result": {"queue": "CERSAI"}})
            return
        kyc_date = state.registration(pan, time.time())
        state.count_answer("found" if kyc_date is not None else "not_found")
        status, answer = search_answer(shape, pan, kyc_date)
        self._send_json(status, answer)

    def _send_fail(self, fail: dict[str, Any]) -> None:
        status = fail["status"]
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:  # a valid but unregistered code, e.g. 599
            phrase = "Error"
        body = fail["body"]
        content_type = fail["content_type"]
        if body is None:
            if status >= 500:
                body = (
                    f"<html><head><title>{status} {phrase}</title></head>"
                    f"<body><center><h1>{status} {phrase}</h1></center>"
                    "<hr><center>nginx</center></body></html>"
                )
                content_type = content_type or "text/html; charset=utf-8"
            else:
                body = json.dumps({"detail": {}, "message": phrase})
                content_type = content_type or "application/json"
        elif content_type is None:
            content_type = "text/html; charset=utf-8" if body.lstrip().startswith("<") else "application/json"
        headers = dict(fail["headers"])
        if fail["retry_after"] is not None:
            headers["Retry-After"] = fail["retry_after"]
        self._send(status, body.encode(), content_type, headers)


class StandIn:
    """A KwikID stand-in served from a daemon thread; use as a context manager in tests."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        latency_ms: float = 0,
        access_log: bool = False,
        register_after_seconds: float = 0.0,
        record_check: RecordCheck | None = None,
    ) -> None:
        if not token or not token.strip():
            raise ValueError("the stand-in needs a non-empty token")
        _seconds(register_after_seconds)
        self.host = host
        self.port = port
        self.access_log = access_log
        self._state = _State(token, float(latency_ms), float(register_after_seconds), record_check)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the client, e.g. http://127.0.0.1:54321 (known once started)."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def token(self) -> str:
        """The bearer token currently accepted."""
        with self._state.lock:
            return self._state.token

    def start(self) -> StandIn:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already started")
        self._state.stopping.clear()
        self._server = _Server((self.host, self.port), self._state, self.access_log)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kwikid-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close every connection; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._state.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def stats(self) -> dict[str, Any]:
        """Counters and the last upload request (headers and decoded body), as GET /_standin/stats returns."""
        return self._state.stats()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Apply fault settings, as POST /_standin/faults does; raises ValueError on a bad setting."""
        try:
            return self._state.set_faults(faults)
        except _FaultError as exc:
            raise ValueError(f"invalid fault settings: {exc.detail}") from None

    def reset(self) -> None:
        """Clear faults, counters and the registry's memory of uploaded PANs; the token is kept."""
        self._state.reset()

    def serve_until_stopped(self) -> None:
        """Block the calling thread until stop() is called (for the CLI)."""
        while self._server is not None and not self._state.stopping.wait(0.5):
            pass

    def __enter__(self) -> StandIn:
        return self if self._server is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
