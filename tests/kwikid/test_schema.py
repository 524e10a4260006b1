"""The check against KwikID's OpenAPI description that every record passes before it is sent."""

from __future__ import annotations

from typing import Any

import pytest

from kwikid.payload import record_to_payload
from kwikid.schema import record_problem
from tests.records.factories import differently_abled_record, minimal_record, valid_record


@pytest.mark.parametrize("record", [valid_record, minimal_record, differently_abled_record])
def test_a_record_the_portal_builds_passes(record: Any) -> None:
    assert record_problem(record_to_payload(record())) is None


def test_a_pan_of_the_wrong_shape_is_named() -> None:
    payload = record_to_payload(valid_record())
    payload["pan"] = "ABC123"
    problem = record_problem(payload)
    assert problem is not None and "pan" in problem


def test_a_missing_api_object_is_named() -> None:
    payload = record_to_payload(valid_record())
    del payload["poa"]
    problem = record_problem(payload)
    assert problem is not None and "poa" in problem


def test_an_over_long_value_is_named() -> None:
    payload = record_to_payload(valid_record())
    payload["basic_details"]["applicant_first_name"] = "A" * 51
    problem = record_problem(payload)
    assert problem is not None and "applicant_first_name" in problem
