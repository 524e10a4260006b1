"""A local stand-in for KwikID's CKYC upload API, for the demo, staging and tests over real HTTP."""

from kwikid_standin.server import (
    DEFAULT_TOKEN,
    UPLOAD_PATH,
    StandIn,
    sample_payload,
    sample_record,
    validate_upload,
)

__all__ = ["DEFAULT_TOKEN", "UPLOAD_PATH", "StandIn", "sample_payload", "sample_record", "validate_upload"]
