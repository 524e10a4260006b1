"""The institution's settings page: its CERSAI codes, the KwikID connection and the deadline clock.

It lives with the uploads because its changes reach past the institution's row: new deadline days re-date
the open records, and a new token resumes the sending that a refused token paused.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from institutions.models import AuditEvent, Institution, User
from records.services import records_recompute_due_dates

from .services import batches_resume, request_assembly


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


@transaction.atomic
def institution_configure(
    *, actor: User | None, institution: Institution | None, data: dict[str, Any], token: str = ""
) -> Institution:
    """Create or update the institution's CERSAI codes and KwikID connection; a non-blank token replaces it.

    Replacing the token lifts a pause caused by a refused token, so sending resumes by itself.
    """
    institution = institution or Institution()
    # What is stored, not the instance: a ModelForm has already written the new values onto it.
    stored = (
        Institution.objects.select_for_update().get(pk=institution.pk) if institution.pk else Institution()
    )
    old_days = (stored.upload_due_days, stored.update_due_days) if institution.pk else None
    before = {name: getattr(stored, name, None) for name in data if name != "api_token"}
    for name, value in data.items():
        setattr(institution, name, value)
    if token.strip():
        institution.api_token = token.strip()
        institution.token_updated_at = timezone.now()
        institution.token_updated_by = actor
        institution.sending_paused_at = None
        institution.sending_paused_reason = ""
    institution.full_clean()
    institution.save()
    # Only what really changed, old -> new (settings hold no customer data); never the token itself.
    changes = {
        name: [_plain(old), _plain(getattr(institution, name))]
        for name, old in before.items()
        if old != getattr(institution, name)
    }
    if changes or token.strip():
        AuditEvent.objects.create(
            actor=actor,
            action="institution_configured",
            object_type="Institution",
            object_id=str(institution.pk),
            detail={"fields": sorted(changes), "changes": changes, "token_replaced": bool(token.strip())},
        )
    if old_days is not None and old_days != (institution.upload_due_days, institution.update_due_days):
        records_recompute_due_dates(institution=institution)
    if token.strip():
        batches_resume(institution_id=institution.pk)
        request_assembly()
    return institution
