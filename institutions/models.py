"""The institution's CERSAI identity, its branches, and the portal's users with their role and branches."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from ckycportal.fields import EncryptedTextField
from ckycportal.triggers import append_only

CODE_VALIDATOR = RegexValidator(r"^[A-Za-z0-9_-]+$", "Use letters, digits, hyphen or underscore only.")


class Institution(models.Model):
    """A reporting entity (bank or NBFC) with its CERSAI codes and its KwikID connection."""

    name = models.CharField(max_length=150)
    fi_code = models.CharField("CERSAI FI code", max_length=20, unique=True, validators=[CODE_VALIDATOR])
    region_code = models.CharField("CERSAI region code", max_length=20, validators=[CODE_VALIDATOR])
    cersai_username = models.CharField("CERSAI username", max_length=100)
    api_version = models.CharField("API version", max_length=10, default="V1.3")
    api_base_url = models.URLField("KwikID base URL", max_length=300)
    # The bearer token is write-only in every form; only its last 4 characters are ever shown.
    api_token = EncryptedTextField("KwikID bearer token", blank=True, default="")
    token_updated_at = models.DateTimeField(null=True, blank=True)
    token_updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    max_records_per_request = models.PositiveIntegerField(
        "maximum records per request",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
    )
    max_request_bytes = models.PositiveIntegerField(
        "maximum request size in bytes",
        default=5_000_000,
        validators=[MinValueValidator(10_000)],
        help_text="A batch whose body would be larger is split: what fits is sent, the rest follows.",
    )
    # Only when KwikID has confirmed that it ignores a kyc_ref_no it already holds may a batch whose answer
    # was lost be sent again automatically; otherwise an admin decides on the reconcile page.
    kwikid_ignores_repeated_ref_no = models.BooleanField(
        "KwikID ignores a repeated KYC reference number",
        default=False,
        help_text="Only when KwikID has confirmed it: batches whose answer was lost are then resent.",
    )
    # KwikID's integration guide (V1.3) marks these two record members as required; the API page's sample
    # request leaves them out. Sent only when the institution's contract with KwikID asks for them; read at
    # send time, so turning it on or off applies to records already approved and queued.
    send_guide_extra_fields = models.BooleanField(
        "send the V1.3 guide's number_of_identity and additional_documents",
        default=False,
        help_text="Only when KwikID asks for them: each record then carries number_of_identity (1, the PAN) "
        "and an empty additional_documents list.",
    )
    # Compliance settings (CKYC validation and the deadline clock).
    warnings_block = models.BooleanField(
        "validation warnings block submission",
        default=False,
        help_text="Off: rules marked as inferred or from secondary sources are shown as warnings only.",
    )
    upload_due_days = models.PositiveSmallIntegerField(
        "days to upload a new customer's record",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Counted from the KYC verification date.",
    )
    update_due_days = models.PositiveSmallIntegerField(
        "days to upload an update of an existing CKYC record",
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Counted from the KYC verification date.",
    )
    # Registration tracking: how long the portal keeps asking the registry about an accepted record, and
    # how many CKYC searches it may make a day (KwikID may bill each one).
    registration_check_days = models.PositiveSmallIntegerField(
        "days to keep checking for registration",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="From KwikID's acceptance; a record not registered by then is left to a person.",
    )
    registration_daily_searches = models.PositiveIntegerField(
        "CKYC searches a day",
        default=5000,
        validators=[MinValueValidator(0), MaxValueValidator(1_000_000)],
        help_text="KwikID may bill each search. 0 stops the checks.",
    )
    # Four eyes: the KwikID endpoint and token and the CERSAI codes change only when a second administrator
    # approves (InstitutionChange). An institution with one administrator may opt out; the opt-out is
    # honoured only while it has exactly one active administrator.
    single_admin_opt_out = models.BooleanField(
        "changes apply without a second administrator",
        default=False,
        help_text="Only while the institution has one active administrator; a second one restores four eyes.",
    )
    # Set when KwikID answers 401: sending stops for this institution until the token is replaced.
    sending_paused_at = models.DateTimeField(null=True, blank=True)
    sending_paused_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.fi_code})"

    @property
    def token_hint(self) -> str:
        """The token's last 4 characters, for recognising it without revealing it."""
        return token_hint(self.api_token)


def token_hint(token: str) -> str:
    """A token's last 4 characters (only "set" for a short one): enough to recognise, never to use."""
    return f"…{token[-4:]}" if len(token) >= 8 else ("set" if token else "")


# What can send the token and the customers' records elsewhere, or stop uploads: a change to any of these
# (or a new token) waits for a second administrator. The rest of the settings page saves at once.
GUARDED_FIELDS = ("fi_code", "region_code", "cersai_username", "api_base_url", "api_version")


class InstitutionChange(models.Model):
    """A change to the KwikID endpoint or token or the CERSAI codes, waiting for a second administrator.

    At most one is pending per institution, and its approver is never its proposer (both enforced by the
    database too). The new token is encrypted here and cleared once the change is decided; pages and events
    only ever show its last 4 characters.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a second administrator"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="proposed_changes")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    # {field: [stored value when proposed, proposed value]}; never the token.
    changes = models.JSONField(default=dict, blank=True)
    new_token = EncryptedTextField(blank=True, default="")
    new_token_hint = models.CharField(max_length=12, blank=True, default="")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution"],
                condition=models.Q(status="pending"),
                name="institution_change_one_pending",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["approved", "rejected"])
                | ~models.Q(decided_by=models.F("proposed_by")),
                name="institution_change_decided_by_another",
            ),
        ]

    def __str__(self) -> str:
        return f"Change {self.pk} of institution {self.institution_id} ({self.status})"

    @property
    def replaces_token(self) -> bool:
        return bool(self.new_token_hint)


class Branch(models.Model):
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="branches")
    code = models.CharField("CERSAI branch code", max_length=20, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=150)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["institution__name", "code"]
        verbose_name_plural = "branches"
        constraints = [
            models.UniqueConstraint(fields=["institution", "code"], name="branch_code_unique_in_institution")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Role(models.TextChoices):
    MAKER = "maker", "Maker (compliance staff)"
    CHECKER = "checker", "Checker (branch manager)"
    ADMIN = "admin", "Administrator"
    AUDITOR = "auditor", "Auditor (read-only)"


class User(AbstractUser):
    """A portal user: one role, one or more branches (admins and auditors see every branch)."""

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MAKER)
    branches = models.ManyToManyField(Branch, blank=True, related_name="users")

    @property
    def is_maker(self) -> bool:
        return self.role == Role.MAKER

    @property
    def is_checker(self) -> bool:
        return self.role == Role.CHECKER

    @property
    def is_portal_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_auditor(self) -> bool:
        return self.role == Role.AUDITOR

    @property
    def can_reveal_pii(self) -> bool:
        """Makers and checkers work with the customer's data; admins and auditors see it masked."""
        return self.role in (Role.MAKER, Role.CHECKER)

    @property
    def sees_all_branches(self) -> bool:
        return self.role in (Role.ADMIN, Role.AUDITOR)


class AuditEvent(models.Model):
    """An immutable line of the institution's audit log: configuration changes, purges, and the like.

    Record-level history lives in records.RecordEvent; this holds what is not about one record. Never holds
    a secret or PII: the token's replacement is logged, never its value.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Append-only in the database: UPDATE and DELETE are refused (ckycportal.triggers).
        triggers = append_only("auditevent")

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id}".strip()
