"""Test data for registration at CKYCR: records accepted by KwikID, and registered ones with their KIN.

The registry's checking pass is another slice's: these set the rows directly, as its moves leave them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.utils import timezone

from ckycportal.crypto import keyed_hash
from records import moves
from records.models import KycRecord, Status


def accepted(record: KycRecord, *, days_ago: int = 0, at: datetime | None = None) -> KycRecord:
    """The record as KwikID accepted it ``days_ago`` days ago (through the upload worker's moves)."""
    KycRecord.objects.filter(pk=record.pk).update(status=Status.APPROVED)
    moves.records_mark_batched(record_ids=[record.pk])
    moves.records_mark_uploaded(record_ids=[record.pk], message="Accepted for processing")
    uploaded_at = at or timezone.now() - timedelta(days=days_ago)
    KycRecord.objects.filter(pk=record.pk).update(uploaded_at=uploaded_at)
    record.refresh_from_db()
    return record


def registered(
    record: KycRecord,
    kin: str,
    *,
    days_ago: int = 5,
    kyc_date: date | None = None,
    preexisting: bool = False,
    note: str = "Found by the CKYC search",
) -> KycRecord:
    """The record accepted ``days_ago`` days ago and found at the registry today with ``kin``
    (registered before upload with ``preexisting``, its KYC date then a year before the upload)."""
    record = accepted(record, days_ago=days_ago)
    assert record.uploaded_at is not None
    upload_day = timezone.localdate(record.uploaded_at)
    kyc_date = kyc_date or (
        upload_day - timedelta(days=365) if preexisting else upload_day + timedelta(days=1)
    )
    record.status = Status.PREEXISTING if preexisting else Status.REGISTERED
    record.ckyc_number = kin
    record.ckyc_number_hash = keyed_hash(kin)
    record.registry_kyc_date = kyc_date
    record.registered_at = timezone.now()
    record.registration_note = note
    record.save(
        update_fields=[
            "status",
            "ckyc_number",
            "ckyc_number_hash",
            "registry_kyc_date",
            "registered_at",
            "registration_note",
        ]
    )
    return record
