"""Thin Celery tasks: each takes ids, calls one service, and is safe to run twice.

Each task is named after the service it calls (``batch_send`` calls ``services.batch_send``).
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def batch_send(batch_id: int) -> str:
    """Send one batch to KwikID. Safe to run twice: the database claim lets only one run send."""
    return services.batch_send(batch_id=batch_id).status


@shared_task(ignore_result=True)
def batch_assemble() -> int:
    """Group approved records into batches and queue each for sending. Safe to run twice."""
    return len(services.batch_assemble())


@shared_task(ignore_result=True)
def uploads_sweep() -> dict[str, int]:
    """Periodic: assemble, and re-ring every batch that is due or whose worker died. Safe to run twice."""
    return services.uploads_sweep()


# The names these tasks had before, kept for one release: a message queued under an old name before a
# deploy (a send waiting out its retry countdown, a sweep from an old beat) still runs instead of being
# dropped as an unregistered task, and bench/run.py still imports assemble_batches and sweep_uploads.
# Nothing in the portal queues them any more; remove them once the queues have drained and bench moved.
@shared_task(ignore_result=True)
def send_batch(batch_id: int) -> str:
    """Old name of ``batch_send``."""
    return batch_send(batch_id)


@shared_task(ignore_result=True)
def assemble_batches() -> int:
    """Old name of ``batch_assemble``."""
    return batch_assemble()


@shared_task(ignore_result=True)
def sweep_uploads() -> dict[str, int]:
    """Old name of ``uploads_sweep``."""
    return uploads_sweep()
