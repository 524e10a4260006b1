"""The integration guide's number_of_identity and additional_documents, sent only behind the institution's
switch, and the request checked against the schema that matches either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kwikid.payload import (
    Header,
    build_request,
    encode_records,
    identity_count,
    record_to_payload,
    with_guide_fields,
    with_guide_fields_encoded,
)
from kwikid.schema import record_problem
from kwikid_standin.server import sample_payload, validate_upload
from tests.records.factories import differently_abled_record, minimal_record, valid_record

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "kwikid" / "openapi.yaml").read_text())
HEADER = Header(fi_code="TEST01", version="V1.3", region_code="MH", username="TESTUSER", branch_code="BRA")
RECORDS = [valid_record, minimal_record, differently_abled_record]


def _request_schema(record_schema: str) -> dict[str, Any]:
    """UploadRequest whose records must match ``record_schema`` (Record or GuideRecord)."""
    components = {"schemas": dict(SPEC["components"]["schemas"])}
    request = dict(components["schemas"]["UploadRequest"])
    request["properties"] = dict(
        request["properties"],
        records={"type": "array", "minItems": 1, "items": {"$ref": f"#/components/schemas/{record_schema}"}},
    )
    components["schemas"]["UploadRequest"] = request
    return {"$ref": "#/components/schemas/UploadRequest", "components": components}


@pytest.mark.parametrize("record", RECORDS)
def test_switch_off_sends_the_api_pages_record_without_the_guides_members(record: Any) -> None:
    body = build_request(HEADER, [record()])
    sent = body["records"][0]
    assert "number_of_identity" not in sent and "additional_documents" not in sent
    jsonschema.validate(body, _request_schema("Record"))
    assert record_problem(sent) is None
    # The guide's schema requires them: the check with the switch on would refuse this record.
    with pytest.raises(jsonschema.ValidationError, match="number_of_identity"):
        jsonschema.validate(body, _request_schema("GuideRecord"))
    assert "number_of_identity" in (record_problem(sent, guide_fields=True) or "")


@pytest.mark.parametrize("record", RECORDS)
def test_switch_on_sends_one_identity_and_no_additional_documents(record: Any) -> None:
    body = build_request(HEADER, [record()], guide_fields=True)
    sent = body["records"][0]
    assert sent["number_of_identity"] == 1  # the PAN
    assert sent["additional_documents"] == []
    jsonschema.validate(body, _request_schema("GuideRecord"))
    assert record_problem(sent, guide_fields=True) is None


def test_the_guide_schema_refuses_a_wrong_count_or_documents_that_are_not_a_list() -> None:
    sent = with_guide_fields(record_to_payload(valid_record()))
    assert "number_of_identity" in (record_problem(sent | {"number_of_identity": 0}, guide_fields=True) or "")
    problem = record_problem(sent | {"additional_documents": {}}, guide_fields=True)
    assert problem is not None and "additional_documents" in problem


def test_identity_count_counts_the_pan() -> None:
    payload = record_to_payload(valid_record())
    assert identity_count(payload) == 1
    assert identity_count(payload | {"pan": ""}) == 0


@pytest.mark.parametrize("record", RECORDS)
def test_a_frozen_payload_gains_the_members_byte_for_byte_as_if_built_with_them(record: Any) -> None:
    payload = record_to_payload(record())
    (frozen,) = encode_records([payload])
    assert with_guide_fields_encoded(frozen) == encode_records([with_guide_fields(payload)])[0]


def test_the_stand_in_accepts_records_with_and_without_the_guides_members() -> None:
    plain = sample_payload(2)
    assert validate_upload(plain)[0] == {}
    guided = sample_payload(2)
    guided["records"] = [with_guide_fields(r) for r in guided["records"]]
    assert validate_upload(guided)[0] == {}
    guided["records"][1] |= {"number_of_identity": 0, "additional_documents": {}}
    assert set(validate_upload(guided)[0]) == {
        "records[1].number_of_identity",
        "records[1].additional_documents",
    }
