"""Writes to the institution's configuration."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import AuditEvent, Institution, User


@transaction.atomic
def institution_configure(
    *, actor: User | None, institution: Institution | None, data: dict[str, Any], token: str = ""
) -> Institution:
    """Create or update the institution's CERSAI codes and KwikID connection; a non-blank token replaces it.

    Replacing the token lifts a pause caused by a refused token, so sending resumes by itself.
    """
    institution = institution or Institution()
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
    changed = sorted(name for name in data if name != "api_token")
    AuditEvent.objects.create(
        actor=actor,
        action="institution_configured",
        object_type="Institution",
        object_id=str(institution.pk),
        detail={"fields": changed, "token_replaced": bool(token.strip())},  # never the token itself
    )
    if token.strip():
        from uploads.services import batches_resume, request_assembly

        batches_resume(institution_id=institution.pk)
        request_assembly()
    return institution
