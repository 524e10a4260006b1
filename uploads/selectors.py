"""Reads for the upload pages, scoped to the user's branches."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from institutions.models import AuditEvent, User
from records.models import KycRecord

from .models import BatchItem, BatchStatus, UploadBatch


def batch_list(user: User) -> QuerySet[UploadBatch]:
    """Batches of the user's branches, newest first."""
    batches = UploadBatch.objects.select_related("branch", "institution")
    if not user.sees_all_branches:
        batches = batches.filter(branch__in=user.branches.all())
    return batches


def batch_get(user: User, pk: int) -> UploadBatch:
    """One batch, or 404 when it belongs to another branch."""
    return get_object_or_404(batch_list(user), pk=pk)


def batch_items(batch: UploadBatch) -> QuerySet[BatchItem]:
    return batch.items.select_related("record").order_by("position")


def record_batch_items(record: KycRecord) -> QuerySet[BatchItem]:
    """Every batch the record has been in, newest first, with what KwikID said of it there."""
    return record.batch_items.select_related("batch").order_by("-batch__created_at", "-pk")


def batch_outcome_counts(batch: UploadBatch) -> dict[str, int]:
    """How many of the batch's records ended each way (a rejected batch may have re-sent most of them)."""
    rows = batch.items.order_by().values("outcome").annotate(n=Count("pk"))
    return {BatchItem.Outcome(row["outcome"]).label: row["n"] for row in rows}


ACTION_LABELS = {
    "batch_retry_now": "Retried now",
    "batch_cancelled": "Cancelled",
    "batch_unknown_resolved": "Lost answer resolved",
}


def batch_audit(batch: UploadBatch) -> list[AuditEvent]:
    """Manual actions taken on the batch (retry, cancel, reconcile), oldest first, with their reasons."""
    events = list(
        AuditEvent.objects.filter(object_type="UploadBatch", object_id=str(batch.pk))
        .select_related("actor")
        .order_by("created_at", "pk")
    )
    for event in events:
        event.label = ACTION_LABELS.get(event.action, event.action)  # type: ignore[attr-defined]
    return events


def upload_progress(user: User) -> dict[str, int]:
    """Today's uploads in the user's branches: records settled, waiting, unknown; batches sending now."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    items = BatchItem.objects.filter(batch__created_at__gte=today)
    if not user.sees_all_branches:
        items = items.filter(batch__branch__in=user.branches.all())
    counts = dict(items.order_by().values_list("outcome").annotate(n=Count("pk")))
    settled = sum(counts.get(o, 0) for o in (BatchItem.Outcome.ACCEPTED, BatchItem.Outcome.REJECTED))
    total = sum(counts.values()) - counts.get(BatchItem.Outcome.REQUEUED, 0)
    sending = batch_list(user).filter(status=BatchStatus.SENDING).count()
    return {
        "total": total,
        "settled": settled,
        "pending": counts.get(BatchItem.Outcome.PENDING, 0),
        "unknown": counts.get(BatchItem.Outcome.UNKNOWN, 0),
        "sending_batches": sending,
    }
