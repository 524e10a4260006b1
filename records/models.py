"""The KYC record (one customer, flat, field names exactly the API's), its lifecycle and its audit events.

Every status change goes through ``records.services._transition``: nothing else assigns ``status``.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone

from ckycportal.fields import EncryptedDateField, EncryptedTextField
from ckycportal.triggers import Refuse, StrictTrigger
from institutions.models import Branch

from .masking import mask_name, mask_value


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Waiting for review"
    RETURNED = "returned", "Returned to maker"
    APPROVED = "approved", "Approved, waiting for upload"
    BATCHED = "batched", "In an upload batch"
    UPLOADED = "uploaded", "Accepted by KwikID"
    REJECTED = "rejected", "Rejected by KwikID"
    # The registry holds the record and gave the customer a KIN dated on or after our upload.
    REGISTERED = "registered", "Registered at CKYCR"
    # The registry's KIN is dated before our upload: a possible duplicate, or an update that should have
    # been one. Registered all the same (the clock stops), but a person should look.
    PREEXISTING = "preexisting", "Registered before upload"


# The only moves a record can make. Editing is allowed in EDITABLE_STATUSES and keeps the status.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SUBMITTED}),
    Status.SUBMITTED: frozenset({Status.APPROVED, Status.RETURNED, Status.DRAFT}),
    Status.RETURNED: frozenset({Status.SUBMITTED}),
    Status.APPROVED: frozenset({Status.BATCHED}),
    # A batch that never reached KwikID (auth failure, retries exhausted) gives its records back.
    Status.BATCHED: frozenset({Status.UPLOADED, Status.REJECTED, Status.APPROVED}),
    # Accepted for processing is not registered: the registry check (registry.services) finds the KIN.
    Status.UPLOADED: frozenset({Status.REGISTERED, Status.PREEXISTING}),
    Status.REJECTED: frozenset({Status.SUBMITTED}),
    Status.REGISTERED: frozenset(),
    Status.PREEXISTING: frozenset(),
}
EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.RETURNED, Status.REJECTED})
# The registry holds these: the deadline clock has stopped.
REGISTERED_STATUSES = frozenset({Status.REGISTERED, Status.PREEXISTING})
# A record is "due soon" when its upload deadline is at most this many days away.
DUE_SOON_DAYS = 2


class KycRecord(models.Model):
    """One individual customer's KYC record, as KwikID's upload API names its fields."""

    # Every status change rewrites the row and every index entry (updated_at moves), so no index here is
    # kept that a wider one already serves: branch, created_by and status lead composite indexes below,
    # and pan_hash needs equality only (no pattern-ops twin).
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="records", db_index=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)

    kyc_ref_no = models.CharField("KYC reference number", max_length=50)
    pan = EncryptedTextField("PAN", max_length=10, blank=True, default="")
    # Keyed hash of the PAN: exact search and duplicate detection without decrypting (ckycportal.crypto).
    pan_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    # basic_details. Coded fields hold CERSAI codes; which codes are valid is the code lists' business
    # (validation), not the schema's, so admins can change a list without a migration.
    applicant_name_title = models.CharField("title", max_length=5, blank=True)
    applicant_first_name = EncryptedTextField("first name", max_length=50, blank=True)
    applicant_middle_name = EncryptedTextField("middle name", max_length=50, blank=True)
    applicant_rel_details_flag = models.CharField("relation", max_length=6, blank=True, default="FATHER")
    applicant_rel_name_title = models.CharField("relative's title", max_length=5, blank=True)
    applicant_rel_first_name = EncryptedTextField("relative's first name", max_length=50, blank=True)
    applicant_rel_middle_name = EncryptedTextField("relative's middle name", max_length=50, blank=True)
    gender = models.CharField(max_length=1, blank=True)
    dob = EncryptedDateField("date of birth", null=True, blank=True)
    # basic_details.disability_info
    differently_abled_flag = models.BooleanField("differently abled", default=False)
    impairment_type = models.CharField(max_length=2, blank=True)
    impairment_percentage = models.PositiveSmallIntegerField(null=True, blank=True)
    udid_number = EncryptedTextField("UDID number", max_length=20, blank=True)

    # poa
    poa_document = models.CharField("proof of address", max_length=2, blank=True)
    poa_document_number = EncryptedTextField("document number", max_length=40, blank=True)
    poa_address_line_1 = EncryptedTextField("address line 1", max_length=55, blank=True)
    poa_vtc = EncryptedTextField("village / town / city", max_length=50, blank=True)
    poa_state = models.CharField("state", max_length=3, blank=True)
    poa_country = models.CharField("country", max_length=2, blank=True, default="IN")
    poa_pin_code = EncryptedTextField("PIN code", max_length=10, blank=True)

    # current_address
    current_address_same_as_poa_address = models.CharField(
        "current address same as proof of address", max_length=1, default="Y"
    )
    current_address_line_1 = EncryptedTextField("address line 1", max_length=55, blank=True)
    current_vtc = EncryptedTextField("village / town / city", max_length=50, blank=True)
    current_state = models.CharField("state", max_length=3, blank=True)
    current_country = models.CharField("country", max_length=2, blank=True)
    current_pin_code = EncryptedTextField("PIN code", max_length=10, blank=True)

    # contact_details
    mobile_isd = models.CharField("mobile ISD code", max_length=3, blank=True, default="91")
    mobile_number = EncryptedTextField(max_length=20, blank=True)

    # kyc_verification_details
    kyc_declaration_date = models.DateField("declaration date", null=True, blank=True)
    kyc_declaration_place = models.CharField("declaration place", max_length=50, blank=True)
    kyc_verification_date = models.DateField("verification date", null=True, blank=True)
    kyc_type = models.CharField("KYC type", max_length=2, blank=True)
    kyc_verifier_name = models.CharField("verifier name", max_length=150, blank=True)
    kyc_verifier_designation = models.CharField("verifier designation", max_length=50, blank=True)
    kyc_verifier_branch = models.CharField("verifier branch", max_length=50, blank=True)
    kyc_verifier_employee_code = models.CharField("verifier employee code", max_length=50, blank=True)
    kyc_type_of_document_submitted = models.CharField("type of document submitted", max_length=2, blank=True)

    # Workflow
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # No index on submitted_by or reviewed_by: no page filters by them (the review queue only excludes the
    # user's own), and users are deactivated, never deleted (the only thing such an index would speed up,
    # PROTECT's check). Each would be one more entry written at every status change.
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    return_reason = models.TextField(blank=True)
    # The last thing KwikID said about this record (accepted message, or the rejection's reason).
    upload_message = models.TextField(blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    # Portal-only, never sent to KwikID: the customer's existing 14-digit CKYC number (KIN) when this
    # record updates a CKYC record that already exists. It shortens the deadline to update_due_days.
    existing_ckyc_no = EncryptedTextField("existing CKYC number (KIN)", max_length=14, blank=True, default="")
    # The registry's answer, once a CKYC search found the customer: the KIN (encrypted, and a keyed hash for
    # exact search without decrypting), the registry's KYC date, when the portal found it and how.
    ckyc_number = EncryptedTextField(
        "CKYC number (KIN)", max_length=14, blank=True, default="", db_default=""
    )
    ckyc_number_hash = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    registry_kyc_date = models.DateField("KYC date at the registry", null=True, blank=True)
    registered_at = models.DateTimeField("registration found at", null=True, blank=True)
    registration_note = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The deadline clock: verification date + the institution's days (services.due_on), kept on the
    # row so lists can filter and sort by it; recomputed on every edit. It stops at registration.
    upload_due_on = models.DateField("upload due on", null=True, blank=True, editable=False)
    # When the customer relationship ended: records are kept 5 years after it (PMLA), then may be purged.
    relationship_closed_on = models.DateField(null=True, blank=True)
    # What the checker approved, exactly as it is sent: the record's API object (kwikid.payload) as
    # compact JSON, encrypted as one value; set at approval (services.record_freeze_values) and cleared when
    # the record goes back for editing. Empty for records approved before it existed: their fields are sent.
    frozen_payload = EncryptedTextField(blank=True, default="", db_default="", editable=False)
    # "<code-book stamp>/r<rules version>/<date>" on which that payload met every CKYC rule with no problem
    # at all and KwikID's schema; the worker checks again only a record whose stamp differs from today's.
    frozen_checked = models.CharField(max_length=60, blank=True, default="", db_default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The retention purge's tombstone: when the record's personal data was erased, and under which rule
    # ("purged on 2026-12-02, under rule ..."). Once set, neither changes (a database trigger, below); the
    # record's events then carry the same note in place of anything personal (RecordEvent's trigger).
    purged_at = models.DateTimeField(null=True, blank=True, editable=False)
    purge_note = models.CharField(max_length=200, blank=True, default="", db_default="", editable=False)

    class Meta:
        verbose_name = "KYC record"
        ordering = ["-updated_at", "-id"]
        # Only a record past retention is purged, and a purge is final. The WHEN clause keeps the check off
        # every other update of a record (status moves, edits): PostgreSQL evaluates it without calling
        # the function. The 5 years are the retention rule's (uploads.retention, PMLA).
        triggers = [
            StrictTrigger(
                name="kycrecord_purge_is_final",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition("OLD.purged_at IS NOT NULL OR NEW.purged_at IS NOT NULL"),
                func="""
                IF OLD.purged_at IS NOT NULL THEN
                    IF NEW.purged_at IS DISTINCT FROM OLD.purged_at
                            OR NEW.purge_note IS DISTINCT FROM OLD.purge_note THEN
                        RAISE EXCEPTION 'UPDATE refused on %: a purge is final', TG_TABLE_NAME
                            USING ERRCODE = '42501';
                    END IF;
                    RETURN NEW;
                END IF;
                IF NEW.relationship_closed_on IS NULL
                        OR NEW.relationship_closed_on > CURRENT_DATE - INTERVAL '5 years'
                        OR NEW.purge_note = '' THEN
                    RAISE EXCEPTION 'UPDATE refused on %: only a record whose relationship closed more than '
                        '5 years ago is purged, with a note', TG_TABLE_NAME USING ERRCODE = '42501';
                END IF;
                RETURN NEW;
                """,
            ),
        ]
        constraints = [
            # KwikID treats kyc_ref_no as the idempotency key: "ref-1" and "REF-1" must not both exist.
            models.UniqueConstraint(
                Upper("kyc_ref_no"),
                name="record_kyc_ref_no_unique",
                violation_error_message="Another record already has this KYC reference number.",
            ),
            # Maker-checker, enforced by the database as well as by the service.
            models.CheckConstraint(
                condition=Q(reviewed_by__isnull=True)
                | (
                    ~Q(reviewed_by=F("created_by"))
                    & (Q(submitted_by__isnull=True) | ~Q(reviewed_by=F("submitted_by")))
                ),
                name="record_reviewer_is_not_maker",
            ),
        ]
        # The records list sorts by (column, id) and pages by seeking past the last row, so each sort it
        # offers has an index ending in id; filters it offers that select many rows have one too. (A prefix
        # index on UPPER(kyc_ref_no) for the reference search is PostgreSQL-only: see migration 0004.)
        indexes = [
            models.Index(fields=["branch", "status", "updated_at"]),
            models.Index(fields=["pan_hash"], name="record_pan_hash"),
            models.Index(fields=["updated_at", "id"], name="record_updated"),
            models.Index(fields=["branch", "updated_at", "id"], name="record_branch_updated"),
            models.Index(fields=["status", "updated_at", "id"], name="record_status_updated"),
            models.Index(fields=["created_at", "id"], name="record_created"),
            models.Index(fields=["created_by", "updated_at", "id"], name="record_maker_updated"),
            # The checker's queue: submitted records, waiting longest first.
            models.Index(
                fields=["submitted_at", "id"], condition=Q(status="submitted"), name="record_review_queue"
            ),
            # Overdue and due-soon: only records the registry does not hold yet have a running clock.
            models.Index(
                fields=["upload_due_on", "id"],
                condition=~Q(status__in=["registered", "preexisting"]),
                name="record_due_open",
            ),
            # Exact search by KIN (only registered records have one).
            models.Index(
                fields=["ckyc_number_hash"], condition=~Q(ckyc_number_hash=""), name="record_kin_hash"
            ),
            # The ageing of records accepted by KwikID and not yet registered (reconciliation, the checks).
            models.Index(fields=["uploaded_at", "id"], condition=Q(status="uploaded"), name="record_waiting"),
            # The batcher takes approved records branch by branch in approval order, 500 at a time: without
            # this partial index each chunk sorts every approved record (quadratic at a million).
            models.Index(
                fields=["branch", "reviewed_at", "id"],
                condition=Q(status="approved"),
                name="record_approved_queue",
            ),
        ]

    def __str__(self) -> str:
        return self.kyc_ref_no

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES and self.purged_at is None

    @property
    def clock_stopped(self) -> bool:
        """Whether the deadline clock has stopped: it runs until the registry holds the record."""
        return self.status in REGISTERED_STATUSES

    @property
    def due_state(self) -> str:
        """ "overdue", "due_soon" (within DUE_SOON_DAYS) or "": the clock runs until the registry holds it."""
        if self.upload_due_on is None or self.clock_stopped:
            return ""
        days_left = (self.upload_due_on - timezone.localdate()).days
        if days_left < 0:
            return "overdue"
        return "due_soon" if days_left <= DUE_SOON_DAYS else ""

    @property
    def waiting_days(self) -> int | None:
        """Whole days since KwikID accepted the record, while the registry does not hold it yet."""
        if self.status != Status.UPLOADED or self.uploaded_at is None:
            return None
        return (timezone.localdate() - timezone.localdate(self.uploaded_at)).days

    @property
    def masked_kin(self) -> str:
        return str(mask_value("ckyc_number", self.ckyc_number)) if self.ckyc_number else ""

    @property
    def masked_pan(self) -> str:
        return str(mask_value("pan", self.pan))

    @property
    def masked_name(self) -> str:
        return mask_name(self.applicant_first_name, self.applicant_middle_name)


class RecordNameToken(models.Model):
    """A keyed hash of one whole word of the applicant's name: name search without decrypting the table.

    Filled by the services whenever the name changes (``records.services.name_tokens``).
    """

    record = models.ForeignKey(KycRecord, on_delete=models.CASCADE, related_name="name_tokens")
    token_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token_hash", "record"], name="record_name_token_unique"),
        ]

    def __str__(self) -> str:
        return f"name token of record {self.record_id}"


class RecordEvent(models.Model):
    """An immutable line of a record's history: who did what, when, and why."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        EDITED = "edited", "Edited"
        SUBMITTED = "submitted", "Submitted for review"
        WITHDRAWN = "withdrawn", "Withdrawn to draft"
        APPROVED = "approved", "Approved"
        RETURNED = "returned", "Returned"
        BATCHED = "batched", "Added to an upload batch"
        UPLOADED = "uploaded", "Accepted by KwikID"
        REJECTED = "rejected", "Rejected by KwikID"
        REGISTERED = "registered", "Registered at CKYCR"
        PREEXISTING = "preexisting", "Found registered before upload"
        REQUEUED = "requeued", "Back in the upload queue"
        REVEALED = "revealed", "Personal data revealed"
        CLOSED = "closed", "Relationship closed"

    record = models.ForeignKey(KycRecord, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    reason = models.TextField(blank=True)
    # An edit's diff, one {"field", "old", "new"} per changed field, personal data masked: what everyone
    # who reads the history (auditors, the audit log, its CSV export) sees.
    changed_fields = models.JSONField(default=list, blank=True)
    # The same edit's personal data in clear, as JSON {field: [old, new]}, encrypted at rest like the
    # record itself: shown only to someone who has revealed the record (that reveal is itself an event).
    # A database default too: bulk moves insert events in raw SQL naming only the columns they fill.
    changed_values = EncryptedTextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        # Append-only in the database. Two UPDATEs are allowed. The retention purge's tombstone, which the
        # trigger writes itself: an event of a purged record (KycRecord.purged_at) keeps every column but
        # its reason, which becomes the record's purge note, its clear values (dropped) and its diff (the
        # changed fields' names alone), whatever the UPDATE asked for. And key rotation, which re-encrypts
        # the clear values and changes nothing else (they can be neither blanked nor added). Any other
        # UPDATE, and every DELETE, is refused.
        triggers = [
            Refuse(
                name="recordevent_no_delete",
                operation=pgtrigger.Delete,
                rule="the audit trail is append-only",
            ),
            StrictTrigger(
                name="recordevent_tombstone_only",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                declare=[("note", "TEXT")],
                func="""
                SELECT r.purge_note INTO note FROM records_kycrecord r
                    WHERE r.id = OLD.record_id AND r.purged_at IS NOT NULL;
                IF note IS NULL THEN
                    -- Key rotation (rotate_encryption_keys): the clear values re-encrypted, nothing else.
                    IF OLD.changed_values <> '' AND NEW.changed_values <> ''
                            AND to_jsonb(NEW) - 'changed_values' = to_jsonb(OLD) - 'changed_values' THEN
                        RETURN NEW;
                    END IF;
                    RAISE EXCEPTION 'UPDATE refused on %: the audit trail is append-only (only the retention '
                        'purge tombstones a purged record''s history)', TG_TABLE_NAME USING ERRCODE = '42501';
                END IF;
                NEW := OLD;
                NEW.reason := note;
                NEW.changed_values := '';
                NEW.changed_fields := (
                    SELECT COALESCE(jsonb_agg(CASE WHEN jsonb_typeof(e) = 'object'
                        THEN COALESCE(e ->> 'field', '') ELSE e #>> '{}' END), '[]'::jsonb)
                    FROM jsonb_array_elements(OLD.changed_fields) AS e
                );
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.created_at:%Y-%m-%d %H:%M})"


# Whoever did one of these to a record is one of its makers and may not review it (maker-checker).
MAKER_ACTIONS = (RecordEvent.Action.CREATED, RecordEvent.Action.EDITED, RecordEvent.Action.SUBMITTED)
