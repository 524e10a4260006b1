"""Per-record results inside an upload's 200: which records KwikID marks as failed, and why."""

from __future__ import annotations

from typing import Any

import pytest

from kwikid.client import UploadResult
from kwikid.rejections import failed_records

REFS = ["REF-1", "REF-2", "REF-3"]
DEFAULT = "KwikID marked this record as failed in its answer."


@pytest.mark.parametrize(
    "body",
    [
        {"message": "3 records accepted for processing", "status": "success"},
        {"message": "ok"},
        {},
        None,
        "accepted",
        [],
        {"status": "success", "data": {"batch_id": 42, "count": 3}},
        {"records": [{"status": "success"}, {"status": "accepted"}, {"status": "SUCCESS"}]},
        {"records": [{"kyc_ref_no": "REF-1", "status": "pending"}]},  # says neither: accepted
    ],
)
def test_answers_without_per_record_failures_fail_nothing(body: Any) -> None:
    assert failed_records(body, REFS) == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A list by position.
        (
            {
                "records": [
                    {"status": "success"},
                    {"status": "failed", "error": "PAN mismatch"},
                    {"status": "ok"},
                ]
            },
            {"REF-2": "PAN mismatch"},
        ),
        # The whole body a list.
        (
            [
                {"status": "success"},
                {"status": "success"},
                {"status": "error", "message": "Photo unreadable"},
            ],
            {"REF-3": "Photo unreadable"},
        ),
        # A list naming kyc_ref_no, in any order.
        (
            {
                "results": [
                    {"kyc_ref_no": "REF-3", "status": "FAILED", "errors": {"pan": ["Enter a valid PAN."]}},
                    {"kyc_ref_no": "REF-1", "status": "SUCCESS"},
                ]
            },
            {"REF-3": "pan: Enter a valid PAN."},
        ),
        # A mapping by index.
        (
            {"data": {"0": {"status": "rejected", "reason": "Duplicate"}, "1": {"status": "success"}}},
            {"REF-1": "Duplicate"},
        ),
        # A mapping by kyc_ref_no, inside a container and at the top level.
        (
            {"records": {"REF-2": {"success": False, "message": "Invalid date of birth"}}},
            {"REF-2": "Invalid date of birth"},
        ),
        (
            {"message": "done", "status": "success", "REF-1": {"status": "error", "detail": "Bad address"}},
            {"REF-1": "Bad address"},
        ),
        # An error without a status is a failure; with a successful status it is not.
        (
            {"records": [{"error": "Name too long"}, {"status": "success", "error": ""}]},
            {"REF-1": "Name too long"},
        ),
        ({"records": [{"status": "success", "error": "warning only"}]}, {}),
        # Bare words and numeric statuses.
        ({"records": ["success", "failed", "success"]}, {"REF-2": DEFAULT}),
        ({"records": [{"status": 200}, {"status": 400}]}, {"REF-2": DEFAULT}),
        ({"records": [{"success": True}, {"success": False}]}, {"REF-2": DEFAULT}),
    ],
)
def test_failed_entries_are_mapped_to_their_records_with_the_reason(
    body: Any, expected: dict[str, str]
) -> None:
    assert failed_records(body, REFS) == expected


def test_entries_that_name_no_sent_record_are_ignored() -> None:
    body = {
        "records": [
            {"kyc_ref_no": "REF-9", "status": "failed", "error": "x"},
            {"status": "failed"},
            {"status": "failed"},
            {"status": "failed"},  # a fourth position: there were three records
        ],
        "REF-8": {"status": "failed"},
    }

    assert failed_records(body, REFS) == {"REF-2": DEFAULT, "REF-3": DEFAULT}


def test_upload_result_reads_its_own_per_record_failures() -> None:
    body = {
        "message": "accepted",
        "status": "success",
        "records": [{"status": "success"}, {"status": "failed"}],
    }
    result = UploadResult(
        status_code=200, message="accepted", status="success", body="", elapsed_ms=1, parsed=body
    )

    assert result.record_failures(REFS[:2]) == {"REF-2": DEFAULT}
    assert UploadResult(200, "ok", "success", "", 1).record_failures(REFS) == {}
