from __future__ import annotations

from django.contrib import admin

from institutions.admin import ReadOnlyAdmin

from .models import UploadAttempt, UploadBatch


@admin.register(UploadBatch)
class UploadBatchAdmin(ReadOnlyAdmin):
    list_display = ("pk", "branch", "status", "record_count", "attempt_count", "created_at", "finished_at")
    list_filter = ("status", "branch")


@admin.register(UploadAttempt)
class UploadAttemptAdmin(ReadOnlyAdmin):
    list_display = ("batch", "number", "started_at", "duration_ms", "status_code", "error_class")
