"""CKYC (CERSAI) code lists as ordered ``(code, label)`` tuples, usable as Django ``choices``.

Pure Python on purpose: validation, forms, imports and payload building all read the same lists.
Several CERSAI masters are not public; where a list is a seed rather than the official master,
the comment beside it says so. Replace seeds with the official masters when CERSAI supplies them.
"""

from __future__ import annotations

import unicodedata

import pycountry

Choices = tuple[tuple[str, str], ...]

NAME_TITLES: Choices = (
    ("MR", "Mr"),
    ("MRS", "Mrs"),
    ("MS", "Ms"),
    ("MISS", "Miss"),
    ("DR", "Dr"),
)

# KwikID sends the words; CERSAI's FATHERSPOUSE_FLAG maps them to 01 / 02.
REL_FLAGS: Choices = (
    ("FATHER", "Father"),
    ("SPOUSE", "Spouse"),
)

GENDERS: Choices = (
    ("M", "Male"),
    ("F", "Female"),
    ("T", "Transgender"),
)

# Proof-of-address master, restricted to the officially valid documents (OVDs). Deemed documents
# (11-15, current address only), legal-entity codes (06, 07, 99) and the S-codes are not accepted
# as an individual's proof of address.
POA_DOCUMENTS: Choices = (
    ("01", "Aadhaar (last 4 digits)"),
    ("02", "Passport"),
    ("03", "Driving licence"),
    ("04", "Voter ID"),
    ("05", "NREGA job card"),
    ("08", "NPR letter"),
    ("09", "e-KYC authentication"),
    ("10", "Offline Aadhaar verification"),
)

# The POA codes whose document number is an Aadhaar number: only its last 4 digits may be stored.
AADHAAR_POA_CODES: frozenset[str] = frozenset({"01", "09", "10"})

# CERSAI DOC_SUB: how the KYC documents were obtained.
DOCUMENT_SUBMITTED_TYPES: Choices = (
    ("01", "Certified copies of OVD"),
    ("02", "e-KYC (UIDAI authentication)"),
    ("03", "Offline verification"),
    ("04", "Digital KYC"),
    ("05", "Equivalent e-document"),
    ("06", "Video-based KYC (V-CIP)"),
)

# CERSAI ACC_TYPE. 02 Small and 03 Simplified exist but are not allowed for new uploads.
KYC_TYPES: Choices = (
    ("01", "Normal"),
    ("04", "OTP-based e-KYC"),
    ("05", "Minor"),
)

# PLACEHOLDER to confirm: CERSAI's "Type of Impairment" master is not public. These codes follow the
# broad disability groups of the RPwD Act 2016 and must be replaced by the official master.
IMPAIRMENT_TYPES: Choices = (
    ("01", "Locomotor disability"),
    ("02", "Visual impairment"),
    ("03", "Hearing impairment"),
    ("04", "Speech and language disability"),
    ("05", "Intellectual disability"),
    ("06", "Mental illness"),
    ("07", "Multiple disabilities"),
    ("99", "Other"),
)

YES_NO: Choices = (
    ("Y", "Yes"),
    ("N", "No"),
)


def _plain(text: str) -> str:
    """Drop diacritics ("Mahārāshtra" -> "Maharashtra"): staff search for the plain spelling."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _sort_key(label: str) -> str:
    return _plain(label).casefold()


# SEED ONLY: CERSAI uses its own 2-letter State Master, which is not public. This seed is ISO 3166-2:IN
# without the "IN-" prefix. Public "state code" lists disagree (CG vs CT for Chhattisgarh, UK vs UT for
# Uttarakhand, OR vs OD for Odisha, TS vs TG for Telangana), so the official CERSAI State Master must
# replace this seed before go-live.
STATES: Choices = tuple(
    sorted(
        (
            (sub.code.removeprefix("IN-"), _plain(sub.name))
            for sub in pycountry.subdivisions
            if sub.country_code == "IN"
        ),
        key=lambda item: _sort_key(item[1]),
    )
)

_ALL_COUNTRIES = sorted(
    ((country.alpha_2, country.name) for country in pycountry.countries),
    key=lambda item: _sort_key(item[1]),
)
# ISO 3166-1 alpha-2, India first (almost every record), then by name.
COUNTRIES: Choices = (
    *(item for item in _ALL_COUNTRIES if item[0] == "IN"),
    *(item for item in _ALL_COUNTRIES if item[0] != "IN"),
)

# The coded fields and the list each takes its choices from.
CODED_FIELDS: dict[str, Choices] = {
    "applicant_name_title": NAME_TITLES,
    "applicant_rel_details_flag": REL_FLAGS,
    "applicant_rel_name_title": NAME_TITLES,
    "gender": GENDERS,
    "impairment_type": IMPAIRMENT_TYPES,
    "poa_document": POA_DOCUMENTS,
    "poa_state": STATES,
    "poa_country": COUNTRIES,
    "current_address_same_as_poa_address": YES_NO,
    "current_state": STATES,
    "current_country": COUNTRIES,
    "kyc_type": KYC_TYPES,
    "kyc_type_of_document_submitted": DOCUMENT_SUBMITTED_TYPES,
}
