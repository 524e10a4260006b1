"""KwikID's CKYC search: what one answer means (``read_search_answer``) and its result types.

The 200 body is not documented (../ckyc-search notes in the README). A search finds the customer's KIN
under one of the shapes other gateways in front of the registry use; it is read defensively and only the
KIN and the dates are kept. Nothing else of the answer leaves this module, never the photo.

- ``SearchFound``: a 14-digit KIN, with the registry's KYC date and updated date when given.
- ``SearchNotFound``: the registry does not hold the customer (yet).
- ``SearchUnreadable``: an answer that is none of these; its start is kept for support (the caller masks
  identifiers before storing it).

Errors (401, 5xx, 429, timeouts, other 4xx) are raised as the upload's typed errors (``kwikid.client``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SEARCH_PATH = "api/ckyc/search"


@dataclass(frozen=True)
class SearchFound:
    kin: str
    kyc_date: date | None
    updated_date: date | None
    shape: str  # which known shape it was read from: "flat", "nested" or "ckyc_number"
    status_code: int
    elapsed_ms: int


@dataclass(frozen=True)
class SearchNotFound:
    reason: str  # what the answer said, without identifiers
    status_code: int
    elapsed_ms: int


@dataclass(frozen=True)
class SearchUnreadable:
    excerpt: str  # the start of the body, unmasked: the caller masks it before keeping it
    status_code: int
    elapsed_ms: int


SearchResult = SearchFound | SearchNotFound | SearchUnreadable
