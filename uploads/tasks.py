"""Thin Celery tasks: each takes ids, calls one service, and is safe to run twice.

Each task is named after the service it calls (``batch_send`` calls ``services.batch_send``).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(ignore_result=True)
def batch_send(batch_id: int) -> str:
    """Send one batch to KwikID. Safe to run twice: the database claim lets only one run send."""
    return services.batch_send(batch_id=batch_id).status


@shared_task(ignore_result=True)
def batch_assemble() -> int:
    """Group approved records into batches and queue each for sending, a bounded number a run (the next run
    queued half-way, behind the sends queued so far). Safe to run twice."""
    return len(services.batch_assemble(limit=settings.UPLOAD_ASSEMBLE_BATCHES_PER_RUN))


@shared_task(ignore_result=True)
def uploads_sweep() -> dict[str, int]:
    """Periodic: assemble, and re-ring every batch that is due or whose worker died. Safe to run twice."""
    return services.uploads_sweep()
