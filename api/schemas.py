"""What the API answers (ninja schemas), and the request body's document: KwikID's own record schema.

The request body is not a pydantic model: it is read and checked by the portal's rules (api.services), so
its messages are the portal's. Its OpenAPI description is KwikID's ``Record`` schema from
kwikid/openapi.yaml, closed to unknown members (the API refuses them) and with the portal's
``existing_ckyc_no`` added.
"""

from __future__ import annotations

import copy
import functools
from datetime import date, datetime
from typing import Any

import yaml
from django.conf import settings
from ninja import Schema

from kwikid.schema import SPEC_PATH

COMPONENT_PREFIX = "KwikID"


class ErrorOut(Schema):
    """Every refusal: ``detail`` maps paths (``records[3].basic_details.dob``) to messages, or is a string."""

    detail: dict[str, str] | str
    message: str


class RecordResult(Schema):
    kyc_ref_no: str
    id: int | None
    status: str
    outcome: str  # created, updated, unchanged (or, in a dry run, what would happen)


class RecordsOut(Schema):
    dry_run: bool
    records: list[RecordResult]


class RecordStatusOut(Schema):
    kyc_ref_no: str
    id: int
    branch_code: str
    status: str
    status_label: str
    upload_due_on: date | None
    upload_message: str
    return_reason: str
    ckyc_number: str  # the KIN once registered, masked like other identifiers ("" until then)
    registry_kyc_date: date | None
    registered_at: datetime | None
    pan: str  # masked
    applicant_name: str  # masked
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    uploaded_at: datetime | None


class ChangeOut(Schema):
    kyc_ref_no: str
    id: int
    status: str
    at: datetime


class ChangesOut(Schema):
    changes: list[ChangeOut]
    next_cursor: str  # pass it back as changed_since; the same cursor again when nothing is new


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every object closed to members it does not list, and refs renamed."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return {"$ref": f"#/components/schemas/{COMPONENT_PREFIX}{name}"}
    result = dict(schema)
    if result.get("type") == "object" and "properties" in result:
        result["properties"] = {k: _closed(v) for k, v in result["properties"].items()}
        result["additionalProperties"] = False
    if "items" in result:
        result["items"] = _closed(result["items"])
    return result


@functools.cache
def request_components() -> dict[str, dict[str, Any]]:
    """KwikID's record schemas for the OpenAPI document, plus the request body itself."""
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = copy.deepcopy(spec["components"]["schemas"])
    components: dict[str, dict[str, Any]] = {}
    for name in (
        "Record",
        "BasicDetails",
        "DisabilityInfo",
        "Poa",
        "CurrentAddress",
        "ContactDetails",
        "KycVerificationDetails",
    ):
        components[COMPONENT_PREFIX + name] = _closed(schemas[name])
    components[COMPONENT_PREFIX + "Record"]["properties"]["existing_ckyc_no"] = {
        "type": "string",
        "description": "the customer's existing 14-digit CKYC number (KIN) when this record updates one; "
        "kept by the portal, never sent to KwikID",
    }
    header = schemas["UploadRequest"]
    body = _closed(header)
    body["required"] = ["branch_code", "records"]
    body["properties"]["records"]["maxItems"] = settings.API_MAX_RECORDS
    for name in ("fi_code", "version", "region_code", "username", "organisation_name"):
        body["properties"][name]["description"] = "optional and ignored: the portal sends its own"
    body["properties"]["branch_code"]["description"] = "one of the client's branches"
    components["RecordsIn"] = body
    return components


RECORDS_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecordsIn"}}},
    }
}
