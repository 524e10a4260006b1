"""CKYC (CERSAI) code lists as ordered ``(code, label)`` tuples, usable as Django ``choices``.

Pure Python on purpose. These lists are the SEEDS of the admin-editable tables in the codelists app
(its data migration copies them) and what validation uses when no code book is passed. Several CERSAI
masters are not public; where a list is a seed rather than the official master, the comment beside it
says so: replace a seed by editing its table when CERSAI supplies the official master.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

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


# -- the code book -------------------------------------------------------------------------------------
# Forms, validation and imports read the lists through a CodeBook. ``STATIC_CODE_BOOK`` holds the seed
# lists above (what ``validate_record(codes=None)`` uses: pure and fast, for tests and scripts); the portal
# builds its own from the admin-editable tables (``codelists.selectors.code_book``).

NAME_TITLES_LIST = "name_titles"
RELATION_FLAGS_LIST = "relation_flags"
GENDERS_LIST = "genders"
POA_DOCUMENTS_LIST = "poa_documents"
DOCUMENT_SUBMITTED_TYPES_LIST = "document_submitted_types"
KYC_TYPES_LIST = "kyc_types"
IMPAIRMENT_TYPES_LIST = "impairment_types"
STATES_LIST = "states"
COUNTRIES_LIST = "countries"
YES_NO_LIST = "yes_no"

# Each list's seed, by name. Every list but yes/no has a table in the codelists app.
STATIC_LISTS: dict[str, Choices] = {
    NAME_TITLES_LIST: NAME_TITLES,
    RELATION_FLAGS_LIST: REL_FLAGS,
    GENDERS_LIST: GENDERS,
    POA_DOCUMENTS_LIST: POA_DOCUMENTS,
    DOCUMENT_SUBMITTED_TYPES_LIST: DOCUMENT_SUBMITTED_TYPES,
    KYC_TYPES_LIST: KYC_TYPES,
    IMPAIRMENT_TYPES_LIST: IMPAIRMENT_TYPES,
    STATES_LIST: STATES,
    COUNTRIES_LIST: COUNTRIES,
    YES_NO_LIST: YES_NO,
}

# The coded fields and the list each takes its codes from.
CODED_LISTS: dict[str, str] = {
    "applicant_name_title": NAME_TITLES_LIST,
    "applicant_rel_details_flag": RELATION_FLAGS_LIST,
    "applicant_rel_name_title": NAME_TITLES_LIST,
    "gender": GENDERS_LIST,
    "impairment_type": IMPAIRMENT_TYPES_LIST,
    "poa_document": POA_DOCUMENTS_LIST,
    "poa_state": STATES_LIST,
    "poa_country": COUNTRIES_LIST,
    "current_address_same_as_poa_address": YES_NO_LIST,
    "current_state": STATES_LIST,
    "current_country": COUNTRIES_LIST,
    "kyc_type": KYC_TYPES_LIST,
    "kyc_type_of_document_submitted": DOCUMENT_SUBMITTED_TYPES_LIST,
}


@dataclass(frozen=True)
class PinEntry:
    """What the PIN master says about one PIN: the state codes it lies in (usually one) and its district."""

    states: frozenset[str]
    district: str


class CodeBook:
    """Immutable code lists (active codes with labels, in display order), plus the PIN master.

    Lookups are set and dict membership, built once: validation of a 100,000-row import asks it for
    every coded field of every row. ``inactive`` entries are known (their labels still show on records
    holding them) but no longer valid. ``pins`` is None when no PIN master is available at all (the static
    book): PINs are then checked for shape only.
    """

    __slots__ = ("_active", "_codes", "_inactive", "_labels", "pins")

    def __init__(
        self,
        lists: Mapping[str, Iterable[tuple[str, str]]],
        *,
        inactive: Mapping[str, Iterable[tuple[str, str]]] | None = None,
        pins: Mapping[str, PinEntry] | None = None,
    ) -> None:
        self._active: Mapping[str, Choices] = MappingProxyType(
            {name: tuple(entries) for name, entries in lists.items()}
        )
        self._codes: Mapping[str, frozenset[str]] = MappingProxyType(
            {name: frozenset(code for code, _ in entries) for name, entries in self._active.items()}
        )
        inactive_labels = {name: dict(entries) for name, entries in (inactive or {}).items()}
        self._inactive: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {name: MappingProxyType(labels) for name, labels in inactive_labels.items()}
        )
        self._labels: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {
                name: MappingProxyType({**inactive_labels.get(name, {}), **dict(entries)})
                for name, entries in self._active.items()
            }
        )
        self.pins: Mapping[str, PinEntry] | None = MappingProxyType(dict(pins)) if pins is not None else None

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError("CodeBook is immutable")
        object.__setattr__(self, name, value)

    def choices(self, list_name: str) -> Choices:
        """The active ``(code, label)`` entries of a list, in display order."""
        return self._active.get(list_name, ())

    def codes(self, list_name: str) -> frozenset[str]:
        """The active codes of a list."""
        return self._codes.get(list_name, frozenset())

    def label(self, list_name: str, code: str) -> str | None:
        """The label of an active or inactive code, None for an unknown one."""
        return self._labels.get(list_name, {}).get(code) or self._inactive.get(list_name, {}).get(code)

    def inactive_label(self, list_name: str, code: str) -> str | None:
        """The label of a code that exists but is no longer in use, else None."""
        return self._inactive.get(list_name, {}).get(code)

    def field_choices(self, field: str, *, keep: str = "") -> Choices:
        """Choices for a coded field; ``keep`` (a record's current value) stays offered even if inactive."""
        list_name = CODED_LISTS[field]
        choices = self.choices(list_name)
        if keep and keep not in self.codes(list_name):
            label = self.inactive_label(list_name, keep)
            choices = (*choices, (keep, f"{label} (no longer in use)" if label else f"{keep} (unknown code)"))
        return choices


STATIC_CODE_BOOK = CodeBook(STATIC_LISTS)
