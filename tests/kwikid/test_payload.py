"""The request body, byte for byte: golden JSON for a complete and a minimal record, checked against the
API's OpenAPI description kept beside the client (kwikid/openapi.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kwikid.payload import (
    PAYLOAD_FIELDS,
    Header,
    build_request,
    encode_records,
    encode_request,
    record_to_payload,
)
from tests.records.factories import differently_abled_record, minimal_record, valid_record

GOLDEN = Path(__file__).parent / "golden"
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "kwikid" / "openapi.yaml").read_text())
HEADER = Header(fi_code="TEST01", version="V1.3", region_code="MH", username="TESTUSER", branch_code="BRA")


def _request_schema() -> dict[str, Any]:
    """The UploadRequest schema with its $refs resolvable."""
    return {"$ref": "#/components/schemas/UploadRequest", "components": SPEC["components"]}


def _sample_properties(schema_name: str) -> set[str]:
    """Members of a schema on the API page's sample (the guide-only x-guide members are left out)."""
    props = SPEC["components"]["schemas"][schema_name]["properties"]
    return {name for name, spec in props.items() if "x-guide" not in spec}


def _keys(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            found.add(key)
            found |= _keys(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value)) if value else set()
    return set()


@pytest.mark.parametrize(
    ("golden", "record"),
    [("complete.json", differently_abled_record), ("minimal.json", minimal_record)],
)
def test_request_body_matches_golden_json(golden: str, record: Any) -> None:
    expected = json.loads((GOLDEN / golden).read_text())
    assert build_request(HEADER, [record()]) == expected


def test_complete_record_carries_every_api_field_name() -> None:
    body = build_request(HEADER, [differently_abled_record()])
    names = set()
    for schema in (
        "UploadRequest",
        "Record",
        "BasicDetails",
        "DisabilityInfo",
        "Poa",
        "CurrentAddress",
        "ContactDetails",
        "KycVerificationDetails",
    ):
        names |= _sample_properties(schema)
    missing = names - _keys(body)
    assert not missing, f"API fields missing from the body: {sorted(missing)}"


@pytest.mark.parametrize("record", [valid_record, minimal_record, differently_abled_record])
def test_request_body_is_valid_against_the_openapi_schema(record: Any) -> None:
    jsonschema.validate(build_request(HEADER, [record()]), _request_schema())


def test_same_as_poa_copies_the_poa_address_into_current_address() -> None:
    current = record_to_payload(minimal_record())["current_address"]
    assert current["current_address_same_as_poa_address"] == "Y"
    assert current["current_pin_code"] == "400001"


def test_disability_details_are_not_sent_when_the_flag_is_false() -> None:
    record = valid_record()
    record.update(impairment_type="01", impairment_percentage=40, udid_number="MH0120221985123456")
    assert record_to_payload(record)["basic_details"]["disability_info"] == {"differently_abled_flag": False}


def test_records_keep_their_order_and_header_fields_open_the_body() -> None:
    first, second = valid_record(), valid_record()
    second["kyc_ref_no"] = "SECOND"
    body = build_request(HEADER, [first, second])
    assert [r["kyc_ref_no"] for r in body["records"]] == [first["kyc_ref_no"], "SECOND"]
    assert list(body)[:6] == ["fi_code", "version", "region_code", "username", "branch_code", "records"]


def test_encoded_request_is_byte_for_byte_the_compact_json_of_the_body() -> None:
    records = [record_to_payload(r) for r in (valid_record(), minimal_record(), differently_abled_record())]
    records[1]["kyc_ref_no"] = "Ünïcode-REF"  # non-ASCII travels as \\u escapes either way
    for some in (records, records[:1], []):
        expected = json.dumps(
            {**build_request(HEADER, []), "records": some}, separators=(",", ":"), allow_nan=False
        ).encode()
        assert encode_request(HEADER, encode_records(some)) == expected


def test_payload_fields_are_all_the_body_reads() -> None:
    # The sender loads only PAYLOAD_FIELDS: a record reduced to them gives the same body as the whole one.
    for make in (valid_record, minimal_record, differently_abled_record):
        full = make()
        reduced = {name: full[name] for name in PAYLOAD_FIELDS}
        assert record_to_payload(reduced) == record_to_payload(full)
    with pytest.raises(KeyError):
        record_to_payload({name: valid_record()[name] for name in PAYLOAD_FIELDS if name != "pan"})
