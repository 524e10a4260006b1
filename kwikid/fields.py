"""The field catalogue: every member of a record on KwikID's upload API, in the API's order.

Each field's flat name (the API's own), the API object it sits in, the label staff read everywhere (form,
errors, record page, import template, KwikID's reasons) and the longest value the API takes. Validation,
forms, the record page, the payload, import, export and the template all read these names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

# The API's objects, in the order a record object lists them, with the title staff see for each.
RECORD = "record"  # the record object's own members: kyc_ref_no and pan
BASIC_DETAILS = "basic_details"
POA = "poa"
CURRENT_ADDRESS = "current_address"
CONTACT_DETAILS = "contact_details"
KYC_VERIFICATION_DETAILS = "kyc_verification_details"

SECTION_TITLES: MappingProxyType[str, str] = MappingProxyType(
    {
        RECORD: "Record",
        BASIC_DETAILS: "Basic details",
        POA: "Proof of address",
        CURRENT_ADDRESS: "Current address",
        CONTACT_DETAILS: "Contact details",
        KYC_VERIFICATION_DETAILS: "KYC verification details",
    }
)

TEXT = "text"
DATE = "date"
FLAG = "flag"  # true / false
NUMBER = "number"  # a whole number


@dataclass(frozen=True, slots=True)
class Field:
    """One member of the API's record object."""

    name: str
    section: str
    label: str
    max_length: int | None = None  # None: the value's format fixes its length (codes, PAN, PIN, dates)
    kind: str = TEXT


CATALOGUE: tuple[Field, ...] = (
    # Not published by KwikID or CERSAI for the institution's own reference: 50 matches the other CERSAI
    # identifier-like fields.
    Field("kyc_ref_no", RECORD, "KYC reference number", 50),
    Field("pan", RECORD, "PAN"),
    Field("applicant_name_title", BASIC_DETAILS, "Title", 5),
    Field("applicant_first_name", BASIC_DETAILS, "First name", 50),
    Field("applicant_middle_name", BASIC_DETAILS, "Middle name", 50),
    Field("applicant_rel_details_flag", BASIC_DETAILS, "Father or spouse"),
    Field("applicant_rel_name_title", BASIC_DETAILS, "Father's or spouse's title", 5),
    Field("applicant_rel_first_name", BASIC_DETAILS, "Father's or spouse's first name", 50),
    Field("applicant_rel_middle_name", BASIC_DETAILS, "Father's or spouse's middle name", 50),
    Field("gender", BASIC_DETAILS, "Gender"),
    Field("dob", BASIC_DETAILS, "Date of birth", kind=DATE),
    # disability_info, nested in basic_details
    Field("differently_abled_flag", BASIC_DETAILS, "Differently abled", kind=FLAG),
    Field("impairment_type", BASIC_DETAILS, "Type of impairment"),
    Field("impairment_percentage", BASIC_DETAILS, "Impairment percentage", kind=NUMBER),
    Field("udid_number", BASIC_DETAILS, "UDID number", 20),
    Field("poa_document", POA, "Proof of address document"),
    # The longest document number CERSAI accepts for any OVD (NREGA job card).
    Field("poa_document_number", POA, "Proof of address document number", 40),
    Field("poa_address_line_1", POA, "Address line 1", 55),
    Field("poa_vtc", POA, "City, town or village", 50),
    Field("poa_state", POA, "State"),
    Field("poa_country", POA, "Country"),
    Field("poa_pin_code", POA, "PIN code"),
    Field("current_address_same_as_poa_address", CURRENT_ADDRESS, "Current address same as proof of address"),
    Field("current_address_line_1", CURRENT_ADDRESS, "Current address line 1", 55),
    Field("current_vtc", CURRENT_ADDRESS, "Current city, town or village", 50),
    Field("current_state", CURRENT_ADDRESS, "Current address state"),
    Field("current_country", CURRENT_ADDRESS, "Current address country"),
    Field("current_pin_code", CURRENT_ADDRESS, "Current address PIN code"),
    Field("mobile_isd", CONTACT_DETAILS, "Mobile ISD code"),
    Field("mobile_number", CONTACT_DETAILS, "Mobile number"),
    Field("kyc_declaration_date", KYC_VERIFICATION_DETAILS, "Declaration date", kind=DATE),
    Field("kyc_declaration_place", KYC_VERIFICATION_DETAILS, "Declaration place", 50),
    Field("kyc_verification_date", KYC_VERIFICATION_DETAILS, "Verification date", kind=DATE),
    Field("kyc_type", KYC_VERIFICATION_DETAILS, "KYC type"),
    Field("kyc_verifier_name", KYC_VERIFICATION_DETAILS, "Verifier name", 150),
    Field("kyc_verifier_designation", KYC_VERIFICATION_DETAILS, "Verifier designation", 50),
    Field("kyc_verifier_branch", KYC_VERIFICATION_DETAILS, "Verifier branch", 50),
    Field("kyc_verifier_employee_code", KYC_VERIFICATION_DETAILS, "Verifier employee code", 50),
    Field("kyc_type_of_document_submitted", KYC_VERIFICATION_DETAILS, "Type of document submitted"),
)

BY_NAME: MappingProxyType[str, Field] = MappingProxyType({field.name: field for field in CATALOGUE})

# The API's flat field names, in the API's order (the order problems are reported in).
FIELDS: tuple[str, ...] = tuple(field.name for field in CATALOGUE)

# One wording everywhere: the form, its errors, validation's messages, the record page, the history.
FIELD_LABELS: MappingProxyType[str, str] = MappingProxyType({field.name: field.label for field in CATALOGUE})

# The longest value of each free-text field the API limits.
MAX_LENGTHS: MappingProxyType[str, int] = MappingProxyType(
    {field.name: field.max_length for field in CATALOGUE if field.max_length is not None}
)

DATE_FIELDS: tuple[str, ...] = tuple(field.name for field in CATALOGUE if field.kind == DATE)

# Each API object with its fields, in the API's order: ((section, (name, ...)), ...).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (section, tuple(field.name for field in CATALOGUE if field.section == section))
    for section in SECTION_TITLES
)

# The current address fields a "same as proof of address" record leaves blank, with the POA field each
# copies in the payload.
CURRENT_FROM_POA: MappingProxyType[str, str] = MappingProxyType(
    {
        "current_address_line_1": "poa_address_line_1",
        "current_vtc": "poa_vtc",
        "current_state": "poa_state",
        "current_country": "poa_country",
        "current_pin_code": "poa_pin_code",
    }
)
CURRENT_ADDRESS_FIELDS: tuple[str, ...] = tuple(CURRENT_FROM_POA)
POA_ADDRESS_FIELDS: tuple[str, ...] = tuple(CURRENT_FROM_POA.values())
DISABILITY_FIELDS: tuple[str, ...] = ("impairment_type", "impairment_percentage", "udid_number")
