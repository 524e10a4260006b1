"""PURE: records -> the body of KwikID's ``POST /ckycportalapi/ckyc-upload/``. No database writes, no HTTP.

Shape and names follow the API page's sample exactly. Required members are always sent; optional ones only
when they hold a value, so KwikID never sees an empty string where it expects a code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from .fields import CURRENT_FROM_POA, DATE_FIELDS, FIELDS

_CURRENT_FROM_POA = CURRENT_FROM_POA


# Every field record_to_payload reads: what the sender loads of a record, and nothing more (the catalogue's
# names: a field added there is sent too).
PAYLOAD_FIELDS: tuple[str, ...] = FIELDS


class RecordLike(Protocol):
    kyc_ref_no: str
    pan: str


@dataclass(frozen=True)
class Header:
    """The institution's CERSAI fields that open every request."""

    fi_code: str
    version: str
    region_code: str
    username: str
    branch_code: str


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, ""):
        target[key] = value


def record_to_payload(record: Any) -> dict[str, Any]:
    """One record as the API's record object (accepts a model instance or any object with the fields)."""
    r = record.__getitem__ if isinstance(record, Mapping) else record.__getattribute__

    basic: dict[str, Any] = {
        "applicant_name_title": r("applicant_name_title"),
        "applicant_first_name": r("applicant_first_name"),
    }
    _put(basic, "applicant_middle_name", r("applicant_middle_name"))
    basic["applicant_rel_details_flag"] = r("applicant_rel_details_flag")
    _put(basic, "applicant_rel_name_title", r("applicant_rel_name_title"))
    basic["applicant_rel_first_name"] = r("applicant_rel_first_name")
    _put(basic, "applicant_rel_middle_name", r("applicant_rel_middle_name"))
    basic["gender"] = r("gender")
    basic["dob"] = _iso(r("dob"))
    disability: dict[str, Any] = {"differently_abled_flag": bool(r("differently_abled_flag"))}
    if disability["differently_abled_flag"]:
        _put(disability, "impairment_type", r("impairment_type"))
        _put(disability, "impairment_percentage", r("impairment_percentage"))
        _put(disability, "udid_number", r("udid_number"))
    basic["disability_info"] = disability

    poa = {
        "poa_document": r("poa_document"),
        "poa_document_number": r("poa_document_number"),
        "poa_address_line_1": r("poa_address_line_1"),
        "poa_vtc": r("poa_vtc"),
        "poa_state": r("poa_state"),
        "poa_country": r("poa_country"),
        "poa_pin_code": r("poa_pin_code"),
    }

    same = r("current_address_same_as_poa_address")
    current: dict[str, Any] = {"current_address_same_as_poa_address": same}
    for current_field, poa_field in _CURRENT_FROM_POA.items():
        # CERSAI expects the current address filled in either way: a copy of the POA address when "Y".
        _put(current, current_field, poa[poa_field] if same == "Y" else r(current_field))

    contact: dict[str, Any] = {}
    _put(contact, "mobile_isd", r("mobile_isd") if r("mobile_number") else "")
    _put(contact, "mobile_number", r("mobile_number"))

    verification: dict[str, Any] = {
        "kyc_declaration_date": _iso(r("kyc_declaration_date")),
        "kyc_declaration_place": r("kyc_declaration_place"),
        "kyc_verification_date": _iso(r("kyc_verification_date")),
        "kyc_type": r("kyc_type"),
        "kyc_verifier_name": r("kyc_verifier_name"),
        "kyc_verifier_designation": r("kyc_verifier_designation"),
        "kyc_verifier_branch": r("kyc_verifier_branch"),
        "kyc_verifier_employee_code": r("kyc_verifier_employee_code"),
    }
    _put(verification, "kyc_type_of_document_submitted", r("kyc_type_of_document_submitted"))

    return {
        "kyc_ref_no": r("kyc_ref_no"),
        "pan": r("pan"),
        "basic_details": basic,
        "poa": poa,
        "current_address": current,
        "contact_details": contact,
        "kyc_verification_details": verification,
    }


# KwikID's integration guide (V1.3) marks two more record members as required that the API page's sample
# leaves out; an institution sends them only when its setting says so (uploads: send_guide_extra_fields).
GUIDE_EXTRA_MEMBERS: tuple[str, ...] = ("number_of_identity", "additional_documents")
# The record object's members that are identity documents: the PAN is the one the portal keeps.
IDENTITY_MEMBERS: tuple[str, ...] = ("pan",)


def identity_count(record: Mapping[str, Any]) -> int:
    """How many identity documents a record object carries (``number_of_identity``): 1 for the PAN."""
    return sum(1 for member in IDENTITY_MEMBERS if record.get(member))


def with_guide_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record object with the guide's ``number_of_identity`` and (empty) ``additional_documents``."""
    return {**record, "number_of_identity": identity_count(record), "additional_documents": []}


def with_guide_fields_encoded(encoded: bytes) -> bytes:
    """``with_guide_fields`` on a serialised record object, without parsing it (a frozen payload as sent).

    The object ends with its closing brace; the two members go in before it, as ``_dumps`` would write
    them. Only the PAN is counted, and every record sent has one (validation requires it).
    """
    return (
        encoded[:-1]
        + b',"number_of_identity":'
        + str(len(IDENTITY_MEMBERS)).encode()
        + (b',"additional_documents":[]}')
    )


_DATE_FIELDS = frozenset(DATE_FIELDS)


def payload_to_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The flat record a payload was made from (``record_to_payload``'s inverse, for what the services store):
    what validation checks when a frozen payload is sent with code lists changed since its approval."""
    flat: dict[str, Any] = {}
    for part in (payload, *(v for v in payload.values() if isinstance(v, Mapping))):
        flat.update((k, v) for k, v in part.items() if not isinstance(v, Mapping))
    flat.update(payload["basic_details"]["disability_info"])
    data: dict[str, Any] = {name: flat.get(name, "") for name in PAYLOAD_FIELDS}
    for name in _DATE_FIELDS:
        data[name] = date.fromisoformat(data[name]) if data[name] else None
    data["differently_abled_flag"] = bool(flat.get("differently_abled_flag"))
    data["impairment_percentage"] = flat.get("impairment_percentage")
    if data["current_address_same_as_poa_address"] == "Y":
        # The payload repeats the POA address there; the record stores it blank (records' clean_record).
        data.update(dict.fromkeys(_CURRENT_FROM_POA, ""))
    return data


def build_request(header: Header, records: Iterable[Any], *, guide_fields: bool = False) -> dict[str, Any]:
    """The whole request body for one batch: the CERSAI header fields, then the records in order (with the
    guide's extra members when ``guide_fields``)."""
    objects = [record_to_payload(record) for record in records]
    return {
        "fi_code": header.fi_code,
        "version": header.version,
        "region_code": header.region_code,
        "username": header.username,
        "branch_code": header.branch_code,
        "records": [with_guide_fields(o) for o in objects] if guide_fields else objects,
    }


def _dumps(value: Any) -> bytes:
    # The client's serialisation: compact, UTF-8, and a NaN is an error rather than invalid JSON.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def encode_records(records: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Each record object serialised once, as it will appear in the body (for sizing, then joining)."""
    return [_dumps(record) for record in records]


def encode_request(header: Header, encoded_records: Sequence[bytes]) -> bytes:
    """The request body from encoded records: byte for byte ``json.dumps(build_request(...))`` compacted."""
    empty = _dumps(build_request(header, []))  # ends with "records":[]} since records is the last member
    return empty[:-2] + b",".join(encoded_records) + b"]}"
