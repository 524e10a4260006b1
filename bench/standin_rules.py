"""The portal's own CKYC rules as the KwikID stand-in's intake check, for the benchmarks.

    python -m kwikid_standin --validate-records bench.standin_rules:portal_rules

A stand-in that only checks a record's shape flatters a bare upload script: real KwikID validates every
record before it answers. With this check the stand-in validates each record of an upload as the portal
does before approval: the API record mapped back to the portal's fields (``kwikid.payload``'s
``payload_to_record``), then ``records.validation.validate_record`` with the code lists and PIN master of
the bench database (read once, by the first upload). Errors block; warnings do not (an institution's
setting the stand-in does not know). The time it takes is part of KwikID's answer for everyone: the
portal's worker and the bare script alike.

Imported in the stand-in's process, which runs with the benchmark's environment (DATABASE_URL and the
portal's settings).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckycportal.settings")

import django

django.setup()

import threading  # noqa: E402

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from codelists.selectors import CodeBook, code_book  # noqa: E402
from kwikid.payload import payload_to_record  # noqa: E402
from records.validation import blocking_problems, validate_record  # noqa: E402

_lock = threading.Lock()
_codes: CodeBook | None = None


def _code_book() -> CodeBook:
    """The code lists and PIN master, read once (the benchmark never changes them), by the first request."""
    global _codes
    with _lock:
        if _codes is None:
            _codes = code_book()
            connection.close()  # this handler thread's connection: no request touches the database again
        return _codes


def record_errors(records: list[Any], codes: CodeBook | None = None) -> dict[str, list[str]]:
    """Blocking problems of each record object, keyed by field path ("records[3].poa_pin_code"), against
    ``codes`` (default: the bench database's, read once)."""
    today, codes = timezone.localdate(), codes or _code_book()
    errors: dict[str, list[str]] = {}
    for index, record in enumerate(records):
        try:
            data = payload_to_record(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            errors[f"records[{index}]"] = ["Does not map to the portal's fields."]
            continue
        for problem in blocking_problems(validate_record(data, complete=True, today=today, codes=codes)):
            errors.setdefault(f"records[{index}].{problem.field}", []).append(problem.message)
    return errors


def portal_rules(records: list[Any]) -> dict[str, list[str]]:
    """The stand-in's record check (``kwikid_standin --validate-records``)."""
    return record_errors(records)
