"""Test data for KYC records: plain dicts keyed by the API's field names, no database."""

from __future__ import annotations

from datetime import date
from typing import Any

# A "today" after every date in valid_record(), for tests that must not depend on the clock.
AS_OF = date(2026, 11, 20)


def valid_record() -> dict[str, Any]:
    """A complete, valid flat record (every field filled that may be; not differently abled)."""
    return {
        "kyc_ref_no": "BR01-2026/000123",
        "pan": "ABCPE1234F",
        "applicant_name_title": "MR",
        "applicant_first_name": "RAVI",
        "applicant_middle_name": "KUMAR",
        "applicant_rel_details_flag": "FATHER",
        "applicant_rel_name_title": "MR",
        "applicant_rel_first_name": "SURESH",
        "applicant_rel_middle_name": "D'SOUZA",
        "gender": "M",
        "dob": date(1985, 4, 12),
        "differently_abled_flag": False,
        "impairment_type": "",
        "impairment_percentage": None,
        "udid_number": "",
        "poa_document": "02",
        "poa_document_number": "K1234567",
        "poa_address_line_1": "12 Marine Drive, Flat 4B",
        "poa_vtc": "Mumbai",
        "poa_state": "MH",
        "poa_country": "IN",
        "poa_pin_code": "400001",
        "current_address_same_as_poa_address": "N",
        "current_address_line_1": "7 FC Road, Shivajinagar",
        "current_vtc": "Pune",
        "current_state": "MH",
        "current_country": "IN",
        "current_pin_code": "411005",
        "mobile_isd": "91",
        "mobile_number": "9876543210",
        "kyc_declaration_date": date(2026, 11, 2),
        "kyc_declaration_place": "Mumbai",
        "kyc_verification_date": date(2026, 11, 3),
        "kyc_type": "01",
        "kyc_verifier_name": "Anita Deshpande",
        "kyc_verifier_designation": "Branch Officer",
        "kyc_verifier_branch": "Fort, Mumbai",
        "kyc_verifier_employee_code": "EMP-0042",
        "kyc_type_of_document_submitted": "01",
    }


def minimal_record() -> dict[str, Any]:
    """A valid record with every optional field blank and the current address the same as the POA."""
    record = valid_record()
    record.update(
        applicant_middle_name="",
        applicant_rel_middle_name="",
        current_address_same_as_poa_address="Y",
        current_address_line_1="",
        current_vtc="",
        current_state="",
        current_country="",
        current_pin_code="",
        mobile_isd="",
        mobile_number="",
    )
    return record


def differently_abled_record() -> dict[str, Any]:
    """valid_record() for a differently abled applicant, with the three disability fields filled."""
    record = valid_record()
    record.update(
        differently_abled_flag=True,
        impairment_type="01",
        impairment_percentage=45,
        udid_number="MH0120221985123456",
    )
    return record
