"""The bank's own systems as API clients: their tokens, their idempotent requests, and webhook deliveries.

An API client acts as a maker named after it (``user``): the portal's maker-checker, validation and
branch scoping hold for it as for a person, and it can never approve.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from ckycportal.fields import EncryptedTextField
from institutions.models import Branch, Institution
from records.models import KycRecord, RecordEvent


def default_rate_limit() -> int:
    """A new client's requests a minute: API_DEFAULT_RATE_LIMIT (an admin may change it per client)."""
    return int(settings.API_DEFAULT_RATE_LIMIT)


class ApiClient(models.Model):
    """One calling system (core banking, account opening), with its token and branches.

    The token is shown once, when it is made; only its SHA-256 is kept (a token is 256 random bits, so a
    fast hash is as safe as a slow one and keeps every request's look-up one indexed probe). ``token_prefix``
    (its first characters) lets people tell tokens apart.
    """

    name = models.CharField(max_length=60, unique=True)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    branches = models.ManyToManyField(Branch, related_name="api_clients")
    # The maker the client acts as: role maker, no usable password, the client's branches.
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    submit_on_arrival = models.BooleanField(
        "send records straight to review",
        default=False,
        help_text="Off: records arrive as drafts for a maker to submit.",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    token_expires_at = models.DateTimeField("token expires", null=True, blank=True)
    token_rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        "requests a minute",
        default=default_rate_limit,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
    )
    # Webhooks: where status changes are pushed, and the secret they are signed with (HMAC-SHA256).
    webhook_url = models.URLField("callback URL", max_length=300, blank=True)
    webhook_secret = EncryptedTextField(blank=True, default="", editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdempotentRequest(models.Model):
    """A request sent with an ``Idempotency-Key``: its answer, replayed to a retry of the same request.

    Holds references, ids and statuses (the 201's body), never personal data.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="api_idempotency_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class WebhookDelivery(models.Model):
    """One status change of a client's record, to be POSTed to its callback URL; retried with back-off.

    One per (client, event), so deriving deliveries twice makes each once. The body is kept encrypted
    (it may carry the KIN) and sent exactly as signed.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "To be sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed after retries"

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="deliveries")
    record = models.ForeignKey(KycRecord, null=True, on_delete=models.SET_NULL, related_name="+")
    event = models.ForeignKey(RecordEvent, null=True, on_delete=models.SET_NULL, related_name="+")
    kyc_ref_no = models.CharField(max_length=50)
    record_status = models.CharField(max_length=12)
    body = EncryptedTextField(default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "event"],
                condition=Q(event__isnull=False),
                name="api_delivery_once_per_event",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"], condition=Q(status="pending"), name="api_delivery_due"
            ),
            models.Index(fields=["client", "created_at", "id"], name="api_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.kyc_ref_no} {self.record_status} to {self.client_id}"
