"""Thin Celery tasks: each takes ids, calls one service, and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def send_batch(batch_id: int) -> str:
    """Send one batch to KwikID. Safe to run twice: the database claim lets only one run send."""
    return services.batch_send(batch_id=batch_id).status


@shared_task(ignore_result=True)
def assemble_batches() -> int:
    """Group approved records into batches and queue each for sending. Safe to run twice."""
    return len(services.batch_assemble())


@shared_task(ignore_result=True)
def sweep_uploads() -> dict[str, int]:
    """Periodic: assemble, and re-ring every batch that is due or whose worker died. Safe to run twice."""
    return services.uploads_sweep()
