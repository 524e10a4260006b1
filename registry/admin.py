"""The registry's tables in the administration site, read-only: the checks move only through the pass."""

from __future__ import annotations

from django.contrib import admin

from institutions.admin import ReadOnlyAdmin, redacted

from .models import RegistryCheck, SearchAttempt


@admin.register(RegistryCheck)
class RegistryCheckAdmin(ReadOnlyAdmin):
    list_display = ("record", "institution", "next_check_at", "checks_made", "last_outcome", "gave_up_at")
    list_filter = ("last_outcome", "institution")


@admin.register(SearchAttempt)
class SearchAttemptAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "institution", "record", "outcome", "status_code", "elapsed_ms")
    list_filter = ("outcome", "institution")
    # The note is masked when it is written (kwikid.search); masked again here, by the log filter's rule.
    exclude = ("note",)
    readonly_fields = ("note_redacted",)
    note_redacted = redacted("note", "note")
