from __future__ import annotations

from django.contrib import admin

from institutions.admin import ReadOnlyAdmin

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
        "return_reason",
        "upload_message",
        "uploaded_at",
        "relationship_closed_on",
        "updated_at",
    )


@admin.register(RecordEvent)
class RecordEventAdmin(ReadOnlyAdmin):
    list_display = ("record", "action", "actor", "from_status", "to_status", "created_at")
    list_filter = ("action",)
