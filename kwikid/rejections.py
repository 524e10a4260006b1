"""Reading a 400's ``detail``: which records of the request KwikID names, and what it says of each."""

from __future__ import annotations

import re
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
