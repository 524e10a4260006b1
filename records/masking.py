"""How PII looks to someone who has not revealed it: enough to recognise a record, not to misuse it."""

from __future__ import annotations

from typing import Any

# The encrypted fields of KycRecord: what is personal data and is masked on screen and in exports.
PII_FIELDS = frozenset(
    {
        "pan",
        "applicant_first_name",
        "applicant_middle_name",
        "applicant_rel_first_name",
        "applicant_rel_middle_name",
        "dob",
        "udid_number",
        "poa_document_number",
        "poa_address_line_1",
        "poa_vtc",
        "poa_pin_code",
        "current_address_line_1",
        "current_vtc",
        "current_pin_code",
        "mobile_number",
        "existing_ckyc_no",
        # The KIN the registry gave the customer (found by the registry check).
        "ckyc_number",
        # The approved payload (all of the above that is sent, as JSON): never shown, masked if it were.
        "frozen_payload",
    }
)
_LAST_FOUR = frozenset(
    {"pan", "mobile_number", "poa_document_number", "udid_number", "existing_ckyc_no", "ckyc_number"}
)
_NAMES = frozenset(
    {"applicant_first_name", "applicant_middle_name", "applicant_rel_first_name", "applicant_rel_middle_name"}
)


def mask_value(field: str, value: Any) -> Any:
    """The masked form of a field's value (non-PII fields and blanks come back unchanged)."""
    if field not in PII_FIELDS or value in (None, ""):
        return value
    text = str(value)
    if field in _LAST_FOUR:
        return "X" * max(len(text) - 4, 4) + text[-4:] if len(text) > 4 else "XXXX"
    if field in _NAMES:
        return " ".join(word[0] + "•" * 3 for word in text.split())
    if field == "dob":
        return "••••-••-••"
    if field.endswith("pin_code"):
        return text[:3] + "XXX"
    return text[0] + "•" * 5


def mask_name(first: str, middle: str = "") -> str:
    return " ".join(mask_value("applicant_first_name", part) for part in (first, middle) if part)
