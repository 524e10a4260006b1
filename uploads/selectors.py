"""Reads for the upload pages, scoped to the user's branches."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from institutions.models import User
from records.models import KycRecord

from .models import BatchItem, UploadBatch


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
