"""Code lists are edited in the administration site (portal admins only, OTP-verified).

Every save goes through ``services.code_entry_save`` (audited, code book refreshed). Entries are
deactivated, never deleted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Max
from django.forms import ModelForm
from django.http import HttpRequest

from institutions.admin import ReadOnlyAdmin

from . import services
from .models import CODE_LIST_MODELS, CodeEntry, PinCode


class CodeEntryAdmin(admin.ModelAdmin):
    list_display: tuple[str, ...] = ("code", "label", "is_active", "sort_order")
    list_editable = ("label", "is_active", "sort_order")
    list_filter = ("is_active",)
    search_fields = ("code", "label")
    ordering = ("sort_order", "label")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A new entry goes after the last one (not to the top at 0, above entries people expect first),
        # on the next step of 10 as the seeded lists are numbered, leaving room to slot one in between.
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        if "sort_order" not in initial:
            last = self.model.objects.aggregate(last=Max("sort_order"))["last"]
            initial["sort_order"] = 10 if last is None else (last // 10 + 1) * 10
        return initial

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Records hold codes: a code is fixed once created (add a new entry, deactivate the old one).
        return ("code", "updated_at") if obj is not None else ("updated_at",)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # records may hold the code: deactivate it instead

    def save_model(self, request: HttpRequest, obj: CodeEntry, form: ModelForm, change: bool) -> None:
        # The form has already run the model's validation; the service audits and refreshes the code book.
        services.code_entry_save(actor=request.user, entry=obj)  # type: ignore[arg-type]


class StateAdmin(CodeEntryAdmin):
    list_display = ("code", "label", "pin_master_name", "is_active", "sort_order")


for _model in CODE_LIST_MODELS:
    admin.site.register(_model, StateAdmin if _model.list_name == "states" else CodeEntryAdmin)


@admin.register(PinCode)
class PinCodeAdmin(ReadOnlyAdmin):
    """Loaded by ``manage.py refresh_pin_master`` only, so it always matches one source."""

    list_display = ("pin", "district", "state_name")
    search_fields = ("=pin", "district")
    list_filter = ("state_name",)
