"""The benchmark stand-in's intake check (bench/standin_rules.py): the portal's own rules on KwikID's
record objects, so that a record the portal would refuse is refused by the stand-in too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from bench.seed import plain_record
from bench.standin_rules import record_errors
from codelists.selectors import code_book
from records import services as record_services

pytestmark = pytest.mark.django_db


def _payload(i: int) -> dict[str, Any]:
    """The record object the portal sends for bench/seed.py's record ``i`` (approval's frozen payload)."""
    today, codes = timezone.localdate(), code_book()
    data = plain_record(i, "SR")
    stamp = record_services.check_stamp(today)
    data.update(record_services.record_freeze_values(data, stamp=stamp, today=today, codes=codes))
    return json.loads(data["frozen_payload"])


def _set(obj: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` wherever it sits in the record object (its sections are nested)."""
    if key in obj:
        obj[key] = value
    for inner in obj.values():
        if isinstance(inner, dict):
            _set(inner, key, value)


def test_records_the_portal_approves_pass() -> None:
    assert record_errors([_payload(0), _payload(1), _payload(2)], codes=code_book()) == {}


def test_a_record_breaking_the_portal_rules_is_named_by_position_and_field() -> None:
    bad = _payload(1)
    _set(bad, "poa_pin_code", "999999")  # no such PIN in the PIN master

    errors = record_errors([_payload(0), bad], codes=code_book())

    assert list(errors) == ["records[1].poa_pin_code"]


def test_a_record_that_does_not_map_back_is_refused_whole() -> None:
    errors = record_errors([{"kyc_ref_no": "X", "pan": "ABCPE1234F"}], codes=code_book())

    assert errors == {"records[0]": ["Does not map to the portal's fields."]}
