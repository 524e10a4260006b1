from __future__ import annotations

from django.contrib import admin

from institutions.admin import ReadOnlyAdmin, redacted

from .models import UploadAttempt, UploadBatch


@admin.register(UploadBatch)
class UploadBatchAdmin(ReadOnlyAdmin):
    list_display = ("pk", "branch", "status", "record_count", "attempt_count", "created_at", "finished_at")
    list_filter = ("status", "branch")
    # KwikID's replies may quote what was sent: shown with identifiers masked.
    exclude = ("response_message", "response_detail", "error")
    readonly_fields = ("response_message_redacted", "response_detail_redacted", "error_redacted")
    response_message_redacted = redacted("response_message", "response message")
    response_detail_redacted = redacted("response_detail", "response detail")
    error_redacted = redacted("error", "error")


@admin.register(UploadAttempt)
class UploadAttemptAdmin(ReadOnlyAdmin):
    list_display = ("batch", "number", "started_at", "duration_ms", "status_code", "error_class")
    exclude = ("response_body", "error_message")
    readonly_fields = ("response_body_redacted", "error_message_redacted")
    response_body_redacted = redacted("response_body", "response body")
    error_message_redacted = redacted("error_message", "error message")
