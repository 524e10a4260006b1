"""The retention purge: erase the personal data of records past retention, keep each record and its history.

PMLA and RBI's KYC Master Direction keep identification records at least 5 years after the relationship
ends; after that, DPDP's erasure duty applies. The audit trail outlives the personal data: a purged record
stays, blank, with a tombstone ("purged on …, under rule …"), and so does every line of its history, whose
reason, clear values and diff the database replaces with that tombstone (records.RecordEvent's trigger).
The database refuses to delete history or to purge a record whose relationship closed less than 5 years ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from ckycportal.fields import EncryptedTextField
from institutions.models import AuditEvent, Role, User
from records.models import KycRecord, RecordEvent, RecordNameToken

from .models import BatchItem

RETENTION_YEARS = 5
RULE = "PMLA 5-year retention"
# Free text a person or KwikID wrote about the record, which may quote its personal data.
_FREE_TEXT = ("return_reason", "upload_message", "registration_note")
_CHUNK = 1000


class PurgeRefused(Exception):
    """The purge was not carried out; the message says why."""


@dataclass(frozen=True)
class PurgeResult:
    cutoff: date
    kyc_ref_nos: list[str]
    applied: bool


def retention_cutoff(today: date) -> date:
    """Relationships closed before this date are past retention."""
    try:
        return today.replace(year=today.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - RETENTION_YEARS, day=28)


def purge_note(*, purged_on: date, closed_on: date) -> str:
    """The tombstone a purged record and each line of its history carry instead of personal data."""
    return (
        f"Purged on {purged_on.isoformat()}, under rule {RULE} (relationship closed {closed_on.isoformat()})."
    )


def _erased_values() -> dict[str, object]:
    """Every personal value of a record, blank: the encrypted fields, their search hashes, free text."""
    values: dict[str, object] = {}
    for field in KycRecord._meta.concrete_fields:
        if isinstance(field, EncryptedTextField):
            values[field.name] = None if field.null else ""
    return values | {"pan_hash": "", "ckyc_number_hash": ""} | dict.fromkeys(_FREE_TEXT, "")


def records_purge_expired(*, actor: User, apply: bool, today: date | None = None) -> PurgeResult:
    """List (``apply=False``) or purge the records past retention; audited either way. Safe to run twice:
    a purged record is not purged again, and a dry run changes nothing but writing its audit event."""
    if actor.role != Role.ADMIN or not actor.is_active:
        raise PurgeRefused(f"{actor.username!r} is not an active admin: only admins purge records.")
    today = today or timezone.localdate()
    cutoff = retention_cutoff(today)
    expired = KycRecord.objects.filter(relationship_closed_on__lt=cutoff, purged_at__isnull=True)
    with transaction.atomic():
        rows = list(expired.select_for_update().order_by("pk").values_list("pk", "kyc_ref_no"))
        refs = [ref for _, ref in rows]
        if apply and rows:
            _purge([pk for pk, _ in rows], today=today)
        AuditEvent.objects.create(
            actor=actor,
            action="records_purged" if apply else "records_purge_dry_run",
            object_type="KycRecord",
            detail={"cutoff": cutoff.isoformat(), "rule": RULE, "count": len(refs), "kyc_ref_nos": refs},
        )
    return PurgeResult(cutoff=cutoff, kyc_ref_nos=refs, applied=apply)


def _purge(ids: list[int], *, today: date) -> None:
    """Erase these records' personal data, set their tombstone, and tombstone their history.

    On PostgreSQL the events' trigger writes the same tombstone itself, whatever an UPDATE sets, and refuses
    any other change; these statements write it too, so that it holds on SQLite (``make run``), which has
    no trigger.
    """
    now = timezone.now()
    erased = _erased_values()
    for start in range(0, len(ids), _CHUNK):
        record_ids = ids[start : start + _CHUNK]
        chunk = KycRecord.objects.filter(pk__in=record_ids)
        closed_dates = chunk.order_by().values_list("relationship_closed_on", flat=True).distinct()
        for closed_on in [day for day in closed_dates if day is not None]:  # never None: past the cutoff
            note = purge_note(purged_on=today, closed_on=closed_on)
            group = chunk.filter(relationship_closed_on=closed_on)
            BatchItem.objects.filter(record__in=group).exclude(message="").update(message=note)
            group.update(**erased, purged_at=now, purge_note=note, updated_at=now)
            RecordEvent.objects.filter(record__in=group).update(reason=note, changed_values="")
        RecordNameToken.objects.filter(record_id__in=record_ids).delete()
        edits = list(
            RecordEvent.objects.filter(record_id__in=record_ids)
            .exclude(changed_fields=[])
            .only("changed_fields")
        )
        for event in edits:
            event.changed_fields = tombstone_diff(event.changed_fields)
        RecordEvent.objects.bulk_update(edits, ["changed_fields"])


def tombstone_diff(changed_fields: object) -> list[str]:
    """An edit's diff without its values: the changed fields' names (as the records' trigger keeps it)."""
    if not isinstance(changed_fields, list):
        return []
    return [
        str(entry.get("field", "")) if isinstance(entry, dict) else str(entry) for entry in changed_fields
    ]
