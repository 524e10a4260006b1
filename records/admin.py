from __future__ import annotations

from django.contrib import admin

from institutions.admin import ReadOnlyAdmin, redacted

from .models import KycRecord, RecordEvent


@admin.register(KycRecord)
class KycRecordAdmin(ReadOnlyAdmin):
    """Workflow facts only: personal data is shown on the portal's record page, masked and audited."""

    list_display = ("kyc_ref_no", "branch", "status", "created_by", "updated_at")
    list_filter = ("status", "branch")
    search_fields = ("kyc_ref_no",)
    fields = (
        "kyc_ref_no",
        "branch",
        "status",
        "created_by",
        "created_at",
        "submitted_by",
        "submitted_at",
        "reviewed_by",
        "reviewed_at",
        "return_reason_redacted",
        "upload_message_redacted",
        "uploaded_at",
        "relationship_closed_on",
        "updated_at",
    )
    readonly_fields = ("created_at", "updated_at", "return_reason_redacted", "upload_message_redacted")
    return_reason_redacted = redacted("return_reason", "return reason")
    upload_message_redacted = redacted("upload_message", "upload message")


@admin.register(RecordEvent)
class RecordEventAdmin(ReadOnlyAdmin):
    """The edit's fields with their values masked; the old and new values in clear stay on the record page,
    shown only to a user who revealed the record (audited there)."""

    list_display = ("record", "action", "actor", "from_status", "to_status", "created_at")
    list_filter = ("action",)
    fields = (
        "record",
        "action",
        "actor",
        "from_status",
        "to_status",
        "reason_redacted",
        "changed_fields",
        "created_at",
    )
    readonly_fields = ("reason_redacted", "created_at")
    reason_redacted = redacted("reason", "reason")
