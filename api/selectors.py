"""Every read the API answers, scoped to the client's branches: another branch's record is simply absent."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet
from django.db.models.functions import Upper
from django.utils import timezone

from records.masking import mask_name, mask_value
from records.models import REGISTERED_STATUSES, KycRecord, RecordEvent

from .errors import BadRequest, NotFound
from .models import ApiClient

_CURSOR_PREFIX = "e1:"


def _client_records(client: ApiClient) -> QuerySet[KycRecord]:
    return KycRecord.objects.filter(branch__in=client.branches.all())


def api_record_get(*, client: ApiClient, kyc_ref_no: str) -> dict[str, Any]:
    """The record's fate as a client may see it: status, deadline, KwikID's message, the KIN once
    registered and timestamps, personal data masked. Raises NotFound outside the client's branches."""
    if not kyc_ref_no.isprintable():  # a NUL cannot be in any reference (nor sent to PostgreSQL)
        raise NotFound("No record with this KYC reference number at this client's branches.")
    record = (
        _client_records(client)
        .select_related("branch")
        .annotate(ref=Upper("kyc_ref_no"))
        .filter(ref=kyc_ref_no.upper())
        .first()
    )
    if record is None:
        raise NotFound("No record with this KYC reference number at this client's branches.")
    registered = record.status in REGISTERED_STATUSES
    return {
        "kyc_ref_no": record.kyc_ref_no,
        "id": record.pk,
        "branch_code": record.branch.code,
        "status": record.status,
        "status_label": record.get_status_display(),
        "upload_due_on": record.upload_due_on,
        "upload_message": record.upload_message,
        "return_reason": record.return_reason,
        "ckyc_number": mask_value("ckyc_number", record.ckyc_number) if registered else "",
        "registry_kyc_date": record.registry_kyc_date,
        "registered_at": record.registered_at,
        "pan": mask_value("pan", record.pan),
        "applicant_name": mask_name(record.applicant_first_name, record.applicant_middle_name),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "submitted_at": record.submitted_at,
        "uploaded_at": record.uploaded_at,
    }


def cursor_encode(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{event_id}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> int:
    """The event id a cursor stands for (0 for an empty cursor: from the beginning)."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit():
        raise BadRequest(
            "changed_since must be a cursor this API answered (next_cursor), or empty to start.",
            {"changed_since": "Not a cursor this API answered"},
        )
    return int(number)


def api_changes_list(*, client: ApiClient, cursor: str, limit: int) -> dict[str, Any]:
    """Status moves of the client's records after ``cursor``, oldest first, and the cursor to ask next.

    Keyset-paged by the id of the RecordEvent of each move: every move is a row, so a poller sees each one
    once and in order (an edit that keeps the status is not a change). Moves younger than
    API_CHANGES_SETTLE_SECONDS wait for the next poll, so a transaction that took its ids earlier but
    commits later is not skipped.
    """
    after = cursor_decode(cursor)
    settled = timezone.now() - timedelta(seconds=settings.API_CHANGES_SETTLE_SECONDS)
    events = list(
        RecordEvent.objects.filter(
            pk__gt=after, record__branch__in=client.branches.all(), created_at__lte=settled
        )
        .exclude(from_status=F("to_status"))
        .exclude(to_status="")
        .order_by("pk")
        .values("pk", "to_status", "created_at", "record_id", "record__kyc_ref_no")[:limit]
    )
    return {
        "changes": [
            {
                "kyc_ref_no": event["record__kyc_ref_no"],
                "id": event["record_id"],
                "status": event["to_status"],
                "at": event["created_at"],
            }
            for event in events
        ],
        "next_cursor": cursor_encode(events[-1]["pk"]) if events else (cursor or cursor_encode(after)),
    }
