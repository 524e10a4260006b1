"""Upload batches (one KwikID request per institution and branch), their records, and every attempt made."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models

from ckycportal.triggers import APPEND_ONLY, Refuse
from institutions.models import Branch, Institution
from records.models import KycRecord


class BatchStatus(models.TextChoices):
    READY = "ready", "Ready to send"
    SENDING = "sending", "Sending"
    RETRY_WAIT = "retry_wait", "Waiting to retry"
    PAUSED = "paused", "Paused: token refused"
    ACCEPTED = "accepted", "Accepted by KwikID"
    REJECTED = "rejected", "Rejected by KwikID"
    UNKNOWN = "unknown", "Outcome unknown"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# The only moves a batch can make; uploads.services._move_batch performs every one of them.
BATCH_TRANSITIONS: dict[str, frozenset[str]] = {
    BatchStatus.READY: frozenset({BatchStatus.SENDING, BatchStatus.CANCELLED}),
    # SENDING -> SENDING is a reclaim of an expired lease by another worker.
    BatchStatus.SENDING: frozenset(
        {
            BatchStatus.SENDING,
            BatchStatus.ACCEPTED,
            BatchStatus.REJECTED,
            BatchStatus.RETRY_WAIT,
            BatchStatus.PAUSED,
            BatchStatus.UNKNOWN,
            BatchStatus.FAILED,
        }
    ),
    BatchStatus.RETRY_WAIT: frozenset({BatchStatus.SENDING, BatchStatus.READY, BatchStatus.CANCELLED}),
    # A replaced token resumes a paused batch.
    BatchStatus.PAUSED: frozenset({BatchStatus.READY, BatchStatus.CANCELLED}),
    BatchStatus.ACCEPTED: frozenset(),
    BatchStatus.REJECTED: frozenset(),
    # Resolved by an admin: KwikID has it (accepted), or it is sent again (ready).
    BatchStatus.UNKNOWN: frozenset({BatchStatus.ACCEPTED, BatchStatus.READY}),
    # "Retry now" gives a failed batch more attempts; "cancel" gives its records back to the queue.
    BatchStatus.FAILED: frozenset({BatchStatus.READY, BatchStatus.CANCELLED}),
    BatchStatus.CANCELLED: frozenset(),
}
FINAL_BATCH_STATUSES = frozenset(
    {
        BatchStatus.ACCEPTED,
        BatchStatus.REJECTED,
        BatchStatus.UNKNOWN,
        BatchStatus.FAILED,
        BatchStatus.CANCELLED,
    }
)
# Batches whose records may go back to the upload queue: nothing of them reached KwikID.
CANCELLABLE = frozenset({BatchStatus.READY, BatchStatus.RETRY_WAIT, BatchStatus.PAUSED, BatchStatus.FAILED})


class UploadBatch(models.Model):
    """The records of one request to KwikID, and what came of it."""

    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="batches")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="batches")
    # No index of its own: (status, next_attempt_at) below serves every filter on the status, and each
    # status move would otherwise write two more entries (the index and its LIKE twin).
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.READY)
    record_count = models.PositiveIntegerField(default=0)
    # What was sent, without PII: the CERSAI header fields and the kyc_ref_nos.
    request_summary = models.JSONField(default=dict, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts allowed before the batch is failed; "retry now" on a failed batch raises it.
    attempt_limit = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The final outcome: 200 -> message/status; 400/401 -> detail/message; transport error -> error.
    response_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_message = models.TextField(blank=True)
    response_status = models.CharField(max_length=100, blank=True)
    response_detail = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name_plural = "upload batches"

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.branch.code}, {self.record_count} records)"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_BATCH_STATUSES


class BatchItem(models.Model):
    """A record's place in a batch, in request order, with what KwikID said of it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        REQUEUED = "requeued", "Back in the queue"
        UNKNOWN = "unknown", "Unknown"

    # No index of its own: both unique constraints below begin with the batch. Every item is written twice
    # (pending, then its outcome), and the table keeps half of each page free (migration 0002) so that the
    # second write stays on its page and touches no index (a HOT update: outcome and message are unindexed).
    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="items", db_index=False)
    record = models.ForeignKey(KycRecord, on_delete=models.PROTECT, related_name="batch_items")
    position = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "record"], name="batch_item_record_once_per_batch"),
            models.UniqueConstraint(fields=["batch", "position"], name="batch_item_position_unique"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.batch_id} #{self.position}"


class UploadAttempt(models.Model):
    """One HTTP call to KwikID for a batch: when, how long, and exactly what came back."""

    # No index of its own: the unique (batch, number) below leads with it.
    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # truncated; never assumed to be JSON
    error_class = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "number"]
        constraints = [models.UniqueConstraint(fields=["batch", "number"], name="attempt_number_unique")]
        # Written twice, then never: inserted before the call (so a reclaim sees an attempt that never
        # answered), and completed once with its duration and answer. The database refuses every DELETE
        # and any UPDATE of a completed attempt or of which batch, number and start it is.
        triggers = [
            Refuse(name="uploadattempt_no_delete", operation=pgtrigger.Delete, rule=APPEND_ONLY),
            Refuse(
                name="uploadattempt_completed_once",
                operation=pgtrigger.Update,
                rule="an upload attempt is completed once, then never changes",
                condition=pgtrigger.Condition(
                    "OLD.duration_ms IS NOT NULL OR NEW.batch_id IS DISTINCT FROM OLD.batch_id"
                    " OR NEW.number IS DISTINCT FROM OLD.number"
                    " OR NEW.started_at IS DISTINCT FROM OLD.started_at"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"Batch {self.batch_id} attempt {self.number}"
