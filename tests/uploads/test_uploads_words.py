"""The batch pages speak people's words: an error class name and the client's timing text become
"KwikID server error (HTTP 503)", while the stored fields keep their exact text for support."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, User
from tests.conftest import otp_login
from uploads.models import BatchStatus, UploadAttempt, UploadBatch
from uploads.templatetags.uploads_words import (
    attempt_error_words,
    kwikid_field_words,
    kwikid_words,
    without_token_advice,
)

SERVER_ERROR = "KwikIDServerError: KwikID failed: HTTP 503, 152-byte body (4 ms)"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (SERVER_ERROR, "KwikID server error (HTTP 503)"),
        (
            f"Gave up after 5 attempts. Last error: {SERVER_ERROR}",
            "Gave up after 5 attempts. Last error: KwikID server error (HTTP 503).",
        ),
        ("KwikIDAuthError: KwikID refused the token: HTTP 401 (3 ms)", "KwikID refused the token (HTTP 401)"),
        (
            "KwikIDAuthError: KwikID token is empty; nothing was sent",
            "No usable KwikID token is set; nothing was sent",
        ),
        (
            "KwikIDConnectError: could not connect to KwikID (ConnectionError, 2 ms); nothing was sent",
            "Could not connect to KwikID; nothing was sent",
        ),
        ("Cancelled: wrong branch", "Cancelled: wrong branch"),
        ("", ""),
    ],
)
def test_stored_errors_are_shown_in_words(stored: str, shown: str) -> None:
    assert kwikid_words(stored) == shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("poa.poa_vtc: Unknown city", "City, town or village: Unknown city"),
        ("records[0].pan: invalid; mobile_number: bad", "PAN: invalid; Mobile number: bad"),
        ("records/2/poa/poa_pin_code: no such PIN", "PIN code: no such PIN"),
        # No field of the record at the end of the path, or no path at all: shown as stored.
        ("records.0.unknown_field: odd", "records.0.unknown_field: odd"),
        ("KwikID rejected the batch", "KwikID rejected the batch"),
        (
            "It no longer passes the CKYC rules: PAN: must be 10",
            "It no longer passes the CKYC rules: PAN: must be 10",
        ),
        ("", ""),
    ],
)
def test_kwikid_reasons_name_fields_by_their_form_labels(stored: str, shown: str) -> None:
    assert kwikid_field_words(stored) == shown


def test_attempt_error_class_in_words() -> None:
    assert attempt_error_words("KwikIDServerError", 503) == "KwikID server error (HTTP 503)"
    assert attempt_error_words("KwikIDAuthError", 401) == "KwikID refused the token (HTTP 401)"
    assert attempt_error_words("WorkerLost", None).startswith("The worker stopped")
    assert attempt_error_words("", None) == ""


def test_pause_reason_loses_its_advice_sentence_only() -> None:
    reason = "KwikID refused the bearer token (HTTP 401). Replace the token to resume sending."
    assert without_token_advice(reason) == "KwikID refused the bearer token (HTTP 401)."
    assert (
        without_token_advice("No KwikID bearer token is configured.")
        == "No KwikID bearer token is configured."
    )


@pytest.mark.django_db
def test_batch_pages_show_no_class_names(erin: User, institution: Institution, branch_a: Branch) -> None:
    batch = UploadBatch.objects.create(
        institution=institution,
        branch=branch_a,
        status=BatchStatus.RETRY_WAIT,
        record_count=1,
        attempt_count=1,
        response_status_code=503,
        error=SERVER_ERROR,
    )
    UploadAttempt.objects.create(
        batch=batch,
        number=1,
        started_at=timezone.now(),
        duration_ms=4,
        status_code=503,
        error_class="KwikIDServerError",
        error_message="KwikID failed: HTTP 503, 152-byte body (4 ms)",
    )
    client = Client()
    otp_login(client, erin)
    for url in (reverse("uploads:list"), reverse("uploads:detail", kwargs={"pk": batch.pk})):
        body = client.get(url).content.decode()
        assert "KwikID server error (HTTP 503)" in body
        visible = body.split("<details>")[0]  # the exact stored text stays behind "Details"
        assert "KwikIDServerError" not in visible and "HTTP 503 KwikID" not in visible
