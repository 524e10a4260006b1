from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from ckycportal.logging import redact

from .models import AuditEvent, Branch, Institution, User


def redacted(field: str, description: str) -> Callable[[Any, Model], str]:
    """A read-only admin column showing ``field`` with identifiers masked by the log filter's rule.

    For free text and JSON that may quote a customer's PAN, mobile or KIN (KwikID's replies, search
    terms, reasons): the admin site never shows personal data in clear, and writes no reveal event.
    """

    @admin.display(description=description)
    def show(model_admin: Any, obj: Model) -> str:
        value = getattr(obj, field)
        if value in (None, "", [], {}):
            return "-"
        return redact(
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        )

    show.__name__ = f"{field}_redacted"
    return show


class ReadOnlyAdmin(admin.ModelAdmin):
    """Visible to administrators, changeable by nobody here: changes go through the portal's services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Institution)
class InstitutionAdmin(ReadOnlyAdmin):
    """Read-only here: the portal's institution page applies the rules (https only, audit, token)."""

    list_display = (
        "name",
        "fi_code",
        "region_code",
        "api_base_url",
        "max_records_per_request",
        "sending_paused_at",
    )
    # The token is replaced on the portal's institution page (write-only there); never shown here.
    exclude = ("api_token",)
    readonly_fields = ("token_updated_at", "token_updated_by", "sending_paused_at", "sending_paused_reason")


@admin.register(Branch)
class BranchAdmin(ReadOnlyAdmin):
    """Read-only here: the portal's branch pages audit every change (Administration, Branches)."""

    list_display = ("code", "name", "institution", "is_active")
    list_filter = ("institution", "is_active")
    search_fields = ("code", "name")


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    """Read-only here: the portal's user pages set roles, branches and passwords, and audit each change.

    Django's groups and permissions are not used by the portal (roles are), so they are not shown.
    """

    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "branches")
    search_fields = ("username", "email")
    fields = ("username", "first_name", "last_name", "email", "role", "branches", "is_active", "last_login")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "actor", "object_type", "object_id")
    list_filter = ("action",)
    fields = ("created_at", "action", "actor", "object_type", "object_id", "detail_redacted")
    readonly_fields = ("created_at", "detail_redacted")
    detail_redacted = redacted("detail", "detail")
