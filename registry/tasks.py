"""Thin Celery tasks over registry.services; each takes ids only and is safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from institutions.models import User

from . import services


@shared_task(ignore_result=True)
def registrations_check(
    record_ids: list[int] | None = None, asked_by_id: int | None = None
) -> dict[str, Any]:
    """One checking pass (beat's, or "check now"'s for ``record_ids``), inside the task time limit.
    Safe to run twice: each record is claimed before it is searched."""
    asked_by = None
    if asked_by_id is not None:
        asked_by = User.objects.filter(pk=asked_by_id).values_list("username", flat=True).first()
    # The pass stops between searches; the last one may still wait out both KwikID timeouts.
    http = settings.KWIKID_CONNECT_TIMEOUT + settings.KWIKID_READ_TIMEOUT
    budget = min(float(settings.REGISTRY_PASS_SECONDS), settings.CELERY_TASK_SOFT_TIME_LIMIT - http - 10)
    summary = services.registrations_check(record_ids=record_ids, asked_by=asked_by, budget_seconds=budget)
    return {"searched": summary.searched, "outcomes": summary.outcomes, "skipped": summary.skipped}
