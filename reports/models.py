"""Notifications for people (in the portal and by email), derived from the records' history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from records.models import KycRecord, RecordEvent


class Notification(models.Model):
    """One message to one user. Holds no customer PII: a record's reference, a reason, counts.

    Unique per (event, recipient) and per (recipient, kind, digest day), so deriving them twice, even
    at the same time, makes each once.
    """

    class Kind(models.TextChoices):
        RETURNED = "returned", "Record returned by a checker"
        REJECTED = "rejected", "Record rejected by KwikID"
        DIGEST = "digest", "Daily review summary"
        PREEXISTING = "preexisting", "Record registered before upload"

    class Email(models.TextChoices):
        PENDING = "pending", "To be sent"
        SENT = "sent", "Sent"
        NONE = "none", "No email address"
        FAILED = "failed", "Failed after retries"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    event = models.ForeignKey(RecordEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    record = models.ForeignKey(KycRecord, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    digest_on = models.DateField(null=True, blank=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(max_length=8, choices=Email.choices, default=Email.PENDING)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    # A sender holds a notification until then; after it, another may take it (a worker that died).
    email_claimed_until = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "recipient"],
                condition=Q(event__isnull=False),
                name="notification_once_per_event_and_recipient",
            ),
            models.UniqueConstraint(
                fields=["recipient", "kind", "digest_on"],
                condition=Q(digest_on__isnull=False),
                name="notification_one_digest_a_day",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            models.Index(fields=["recipient", "created_at", "id"], name="notification_inbox"),
            models.Index(
                fields=["created_at"], condition=Q(email_status="pending"), name="notification_email_pending"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class DerivationCursor(models.Model):
    """How far the history has been read for notifications (re-read with an overlap; see services)."""

    key = models.CharField(max_length=40, unique=True)
    position = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} at {self.position:%Y-%m-%d %H:%M:%S}"
