"""The API's audit log lines (institutions.AuditEvent): each POST's outcome, and refusals as counts.

Never a body, a token or personal data: the client, how many records, the outcome, the status code.
Refusals (401, 413, 415, 429) are written once per client (or once for unknown callers), status and minute:
a caller hammering the API with a bad token must not turn each request into an audit row.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches

from institutions.models import AuditEvent

from .models import ApiClient

API_REQUEST = "api.request"
API_REFUSED = "api.refused"


def request_audit(*, client: ApiClient, records: int, outcome: str, dry_run: bool, **detail: Any) -> None:
    """One line for a POST of records: who, how many records, the outcome (created, refused, ...)."""
    AuditEvent.objects.create(
        actor=client.user,
        action=API_REQUEST,
        object_type="api client",
        object_id=str(client.pk),
        detail={"client": client.name, "records": records, "outcome": outcome, "dry_run": dry_run, **detail},
    )


def refusal_audit(*, client: ApiClient | None, status: int, reason: str) -> None:
    """A refused request, written at most once a minute per client (or unknown caller) and status."""
    minute = int(time.time() // 60)
    key = f"refused:{client.pk if client else '-'}:{status}:{minute}"
    cache = caches["api"]
    if not cache.add(key, 1, timeout=120):
        cache.incr(key)
        return
    AuditEvent.objects.create(
        actor=client.user if client else None,
        action=API_REFUSED,
        object_type="api client" if client else "",
        object_id=str(client.pk) if client else "",
        detail={"client": client.name if client else "", "status": status, "reason": reason},
    )
