from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import Institution


def portal(request: HttpRequest) -> dict[str, Any]:
    """What every page's frame shows: a banner while sending is paused for a refused token."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    paused = list(
        Institution.objects.filter(sending_paused_at__isnull=False).values("name", "sending_paused_reason")
    )
    return {"paused_institutions": paused}
