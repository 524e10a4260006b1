"""Which records KwikID refused, and why: from a 400's ``detail`` (``map_rejection``) and from the
per-record results a 200 may carry (``failed_records``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# "records[3].pan", "records.3.pan", "records/3/pan", "records[3]"
_INDEX_KEY = re.compile(r"^records(?:\[(\d+)\]|[./](\d+))(?:[./](.*))?$")


def _messages(value: Any, field: str = "") -> list[str]:
    """Flatten whatever KwikID put under a key into readable lines, prefixed by the field path."""
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in _messages(v, f"{field}.{k}" if field else str(k))]
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return [f"{field}: {v}" if field else str(v) for v in value]
    if isinstance(value, list):
        return [m for v in value for m in _messages(v, field)]
    return [f"{field}: {value}" if field else str(value)]


def map_rejection(detail: Any, refs: list[str]) -> dict[int, list[str]]:
    """Which positions of the batch a 400's ``detail`` names, with the messages for each.

    Understands record indexes as keys (``records[3].pan``, ``records.3.pan``, ``records/3/pan``), a
    ``records`` member holding a list or an index-keyed mapping of per-record errors, and keys equal to a
    record's kyc_ref_no. Anything else names no record (and then the whole batch is rejected).
    """
    named: dict[int, list[str]] = {}
    if not isinstance(detail, dict):
        return named

    def name(position: int, messages: list[str]) -> None:
        if 0 <= position < len(refs) and messages:
            named.setdefault(position, []).extend(messages)

    position_of_ref = {ref: i for i, ref in enumerate(refs)}
    for key, value in detail.items():
        match = _INDEX_KEY.match(str(key))
        if match:
            name(int(match.group(1) or match.group(2)), _messages(value, match.group(3) or ""))
        elif key == "records" and isinstance(value, list):
            for position, errors in enumerate(value):
                if errors:
                    name(position, _messages(errors))
        elif key == "records" and isinstance(value, dict):
            for index, errors in value.items():
                if str(index).isdigit():
                    name(int(index), _messages(errors))
        elif key in position_of_ref:
            name(position_of_ref[key], _messages(value))
    return named


# Where a 200 may hold its per-record results, besides a list as the whole body or keys that are refs.
_RESULT_CONTAINERS = ("records", "results", "record_results", "data", "response", "details", "detail")
_REF_KEYS = ("kyc_ref_no", "kycRefNo", "kyc_ref", "ref_no", "reference")
_STATUS_KEYS = ("status", "result", "record_status", "state")
_REASON_KEYS = ("error", "errors", "message", "detail", "details", "reason", "remarks", "msg")
_FAILED = frozenset({"failed", "failure", "fail", "error", "errors", "rejected", "invalid", "false"})
_SUCCEEDED = frozenset(
    {"success", "successful", "succeeded", "ok", "accepted", "processed", "submitted", "true"}
)
_DEFAULT_REASON = "KwikID marked this record as failed in its answer."


def failed_records(parsed_body: Any, sent_refs: Sequence[str]) -> dict[str, str]:
    """The records (by kyc_ref_no) that a 200's per-record results mark as failed, each with its reason.

    KwikID's guide says the upload answers with a result for each record; the shape is not documented, so
    these are understood: a list of per-record entries (by position, or naming their ``kyc_ref_no``),
    as the body or under ``records``/``results``/``data``/...; a mapping of entries by index or by
    kyc_ref_no, there or at the top level. An entry fails when its status says so (failed, error,
    rejected, ``success: false``) or when it carries an error without a successful status. A plain
    ``{message, status}`` names no record: all were accepted. Anything unclear counts as accepted: KwikID
    took the request, and wrongly sending an accepted record back to its maker would upload it twice.
    """
    refs = list(sent_refs)
    known = set(refs)
    failures: dict[str, str] = {}
    for ref, entry in _entries(parsed_body, refs):
        if ref in known and ref not in failures:
            reason = _failure_reason(entry)
            if reason is not None:
                failures[ref] = reason
    return failures


def _entries(parsed: Any, refs: list[str]) -> list[tuple[str | None, Any]]:
    """(kyc_ref_no, entry) of every per-record entry found; the ref is None when none can be told."""
    found: list[tuple[str | None, Any]] = []
    sent = set(refs)
    containers: list[Any] = [parsed] if isinstance(parsed, list) else []
    if isinstance(parsed, dict):
        containers += [parsed[key] for key in _RESULT_CONTAINERS if isinstance(parsed.get(key), list | dict)]
        found += [(key, value) for key, value in parsed.items() if key in sent]
    for container in containers:
        if isinstance(container, list):
            for position, entry in enumerate(container):
                named = _named_ref(entry)
                found.append((named or (refs[position] if position < len(refs) else None), entry))
        else:
            for key, entry in container.items():
                named = _named_ref(entry)
                if named is not None:
                    found.append((named, entry))
                elif str(key).isdigit() and int(key) < len(refs):
                    found.append((refs[int(key)], entry))
                elif key in sent:
                    found.append((key, entry))
    return found


def _named_ref(entry: Any) -> str | None:
    if isinstance(entry, dict):
        for key in _REF_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _failure_reason(entry: Any) -> str | None:
    """Why this entry failed, or None when it does not say it failed."""
    if isinstance(entry, str):
        return _DEFAULT_REASON if entry.strip().lower() in _FAILED else None
    if not isinstance(entry, dict):
        return None
    said = [entry[key] for key in (*_STATUS_KEYS, "success") if key in entry]
    failed = any(_says(value) is False for value in said)
    succeeded = any(_says(value) is True for value in said)
    has_error = any(entry.get(key) not in (None, "", [], {}) for key in ("error", "errors"))
    if not (failed or (has_error and not succeeded)):
        return None
    lines = [
        line
        for key in _REASON_KEYS
        if entry.get(key) not in (None, "", [], {})
        for line in _messages(entry[key])
        if line.strip().lower() not in _FAILED | _SUCCEEDED
    ]
    return "; ".join(lines) if lines else _DEFAULT_REASON


def _says(value: Any) -> bool | None:
    """True when a status value means success, False when it means failure, None when it says neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return True if 200 <= value < 300 else False if 400 <= value < 600 else None
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _SUCCEEDED else False if word in _FAILED else None
    return None
