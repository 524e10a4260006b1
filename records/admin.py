from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import KycRecord, RecordEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible to administrators, changeable by nobody here: KYC data changes only through the services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
