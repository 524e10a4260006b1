"""KwikID's CKYC search: what one answer means (``read_search_answer``) and its result types.

The 200 body is not documented (../ckyc-search notes in the README). A search finds the customer's KIN
under one of the shapes other gateways in front of the registry use; it is read defensively and only the
KIN and the dates are kept. Nothing else of the answer leaves this module, never the photo.

- ``SearchFound``: a 14-digit KIN, with the registry's KYC date and updated date when given.
- ``SearchNotFound``: the registry does not hold the customer (yet).
- ``SearchUnreadable``: an answer that is none of these; its start is kept for support (the caller masks
  identifiers before storing it).

Errors (401, 5xx, 429, timeouts, other 4xx) are raised as the upload's typed errors (``kwikid.client``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

SEARCH_PATH = "api/ckyc/search"
# The start of an unreadable body that is kept for support; enough to see its shape, not a whole page.
EXCERPT_LIMIT = 1000
NOT_FOUND_STATUSES = (404, 422)
# Answers are small; a larger body is not parsed (it is no search answer KwikID documents).
_JSON_PARSE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class SearchFound:
    kin: str
    kyc_date: date | None
    updated_date: date | None
    shape: str  # which known shape it was read from: "flat", "nested" or "ckyc_number"
    status_code: int
    elapsed_ms: int


@dataclass(frozen=True)
class SearchNotFound:
    reason: str  # what the answer said, without identifiers
    status_code: int
    elapsed_ms: int


@dataclass(frozen=True)
class SearchUnreadable:
    excerpt: str  # the start of the body, unmasked: the caller masks it before keeping it
    status_code: int
    elapsed_ms: int


SearchResult = SearchFound | SearchNotFound | SearchUnreadable


# The key that holds the KIN in each known shape (matched case-insensitively), and the shape's name.
_KIN_KEYS = {"ckyc_no": "flat", "ckyc_id": "nested", "ckyc_number": "ckyc_number"}
_KYC_DATE_KEYS = ("kyc_date",)
_UPDATED_DATE_KEYS = ("updated_date", "update_date", "last_updated_date")
# Where a message about the search may sit, in the answer or in its ``data``.
_MESSAGE_KEYS = ("remarks", "message", "error", "detail", "msg", "status_message", "message_code")
_NOT_FOUND_RE = re.compile(
    r"not\s*found|does\s*not\s*exist|doesn'?t\s*exist|not\s*exists?|no\s+(?:such\s+|matching\s+)?"
    r"(?:kyc\s+)?(?:record|data|result|customer)s?(?:\s+found|\s+available)?\b|no_record",
    re.IGNORECASE,
)
# A KIN as displays write it: an optional "S"/"L" prefix (simplified accounts), digits with spaces or hyphens.
_KIN_DISPLAY_RE = re.compile(r"[SL]?[0-9][0-9 -]*[0-9]", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_DATE_FORMS = (
    # (pattern, order of the groups): DD-MM-YYYY (the registry's own), YYYY-MM-DD, DD/MM/YYYY, DD-MON-YYYY
    (re.compile(r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4})"), "dmy"),
    (re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"), "ymd"),
    (re.compile(r"([0-9]{1,2})[- ]([A-Za-z]{3})[A-Za-z]*[- ]([0-9]{4})"), "dmy"),
)
# Identifiers a message might quote (a PAN, long digit runs such as a KIN or an Aadhaar number).
_IDENTIFIER_RE = re.compile(r"[A-Za-z]{5}[0-9]{4}[A-Za-z]|[0-9][0-9 -]{2,}[0-9]")


def read_search_answer(status_code: int, body: bytes, elapsed_ms: int) -> SearchResult:
    """What one search answer means: a KIN found, the customer not found, or unreadable.

    A 2xx is searched for a KIN under every known shape, then for a "not found" message. A 404 or 422 is
    "not found" only when its body says so: an HTML 404 (a wrong URL, a proxy's page) is unreadable, so it is
    counted and looked into instead of passing for "not registered yet" for ever. Only the KIN, the dates
    and the shape are read; the rest of the answer (the name, the photo) is dropped here.
    """
    parsed = _parse(body)
    if 200 <= status_code < 300:
        for container in _containers(parsed):
            found = _found_in(container)
            if found is not None:
                kin, shape = found
                return SearchFound(
                    kin=kin,
                    kyc_date=_date_in(container, _KYC_DATE_KEYS),
                    updated_date=_date_in(container, _UPDATED_DATE_KEYS),
                    shape=shape,
                    status_code=status_code,
                    elapsed_ms=elapsed_ms,
                )
    if 200 <= status_code < 300 or status_code in NOT_FOUND_STATUSES:
        reason = _not_found_reason(parsed)
        if reason is not None:
            return SearchNotFound(reason=reason, status_code=status_code, elapsed_ms=elapsed_ms)
    excerpt = body[: EXCERPT_LIMIT * 4].decode("utf-8", errors="replace")[:EXCERPT_LIMIT]
    return SearchUnreadable(excerpt=excerpt, status_code=status_code, elapsed_ms=elapsed_ms)


def normalise_kin(value: Any) -> str | None:
    """The 14 digits of a KIN as the answer wrote it, or None when it is not one.

    A display prefix ("S", "L") and spaces or hyphens are dropped; anything else that is not 14 digits
    (a 14-character reference ID with letters, a masked value, a blank) is not a KIN.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _KIN_DISPLAY_RE.fullmatch(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    return digits if len(digits) == 14 else None


def _parse(body: bytes) -> Any:
    if not body or len(body) > _JSON_PARSE_LIMIT:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _get(mapping: dict[str, Any], key: str) -> Any:
    """mapping[key] whatever the case of the key (gateways write the same field in both cases)."""
    if key in mapping:
        return mapping[key]
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None


def _containers(parsed: Any) -> Iterator[dict[str, Any]]:
    """The objects of the answer that may hold the customer: the answer, its data and the nested search."""
    if isinstance(parsed, list) and len(parsed) == 1:
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        return
    yield parsed
    for key in ("data", "result", "response"):
        inner = _get(parsed, key)
        if isinstance(inner, list) and len(inner) == 1:
            inner = inner[0]
        if isinstance(inner, dict):
            yield inner
            nested = _get(inner, "ckyc_search_data")
            if isinstance(nested, list) and len(nested) == 1:
                nested = nested[0]
            if isinstance(nested, dict):
                yield nested


def _found_in(container: dict[str, Any]) -> tuple[str, str] | None:
    for key, shape in _KIN_KEYS.items():
        kin = normalise_kin(_get(container, key))
        if kin is not None:
            return kin, shape
    return None


def parse_registry_date(value: Any) -> date | None:
    """A date written DD-MM-YYYY (the registry's form), YYYY-MM-DD, DD/MM/YYYY or DD-MON-YYYY, possibly
    followed by a time; None when it is none of these or no real date."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for pattern, order in _DATE_FORMS:
        match = pattern.match(text)
        if match is None:
            continue
        first, second, third = match.groups()
        if order == "ymd":
            year, month_text, day = first, second, third
        else:
            day, month_text, year = first, second, third
        month = _MONTHS.get(month_text[:3].lower()) if month_text.isalpha() else int(month_text)
        if month is None:
            return None
        try:
            return date(int(year), month, int(day))
        except ValueError:
            return None
    return None


def _date_in(container: dict[str, Any], keys: tuple[str, ...]) -> date | None:
    for key in keys:
        found = parse_registry_date(_get(container, key))
        if found is not None:
            return found
    return None


def _messages(parsed: Any) -> Iterator[str]:
    for container in _containers(parsed):
        for key in _MESSAGE_KEYS:
            value = _get(container, key)
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict | list):
                yield from (str(item) for item in (value.values() if isinstance(value, dict) else value))


def _not_found_reason(parsed: Any) -> str | None:
    """What the answer said when it says the registry holds no such customer; None when it does not."""
    if isinstance(parsed, str):
        parsed = {"message": parsed}
    for message in _messages(parsed):
        if _NOT_FOUND_RE.search(message):
            return mask_identifiers(message.strip())[:200]
    return None


def mask_identifiers(text: str) -> str:
    """Text with anything that looks like a PAN or a number of three or more digits replaced by Xs."""
    return _IDENTIFIER_RE.sub(lambda match: "X" * len(match.group()), text)
