"""A local stand-in for KwikID's CKYC upload and search APIs, for the demo, staging and tests over HTTP."""

from kwikid_standin.server import (
    DEFAULT_TOKEN,
    SEARCH_PATH,
    UPLOAD_PATH,
    StandIn,
    kin_for,
    sample_payload,
    sample_record,
    validate_upload,
)

__all__ = [
    "DEFAULT_TOKEN",
    "SEARCH_PATH",
    "UPLOAD_PATH",
    "StandIn",
    "kin_for",
    "sample_payload",
    "sample_record",
    "validate_upload",
]
