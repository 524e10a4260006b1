"""Writes to the institution's configuration."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import Institution, User


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
    if token.strip():
        from uploads.services import request_assembly

        request_assembly()
    return institution
