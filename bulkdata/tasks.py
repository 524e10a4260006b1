"""Thin Celery tasks for imports that are too large for a request, each named after the one service it
calls and queued by the services themselves; each is safe to run twice (the job's status and lease decide
whether there is anything to do)."""

from __future__ import annotations

from celery import shared_task

from . import services

# Longer than the default task limit, as the largest files take minutes, but below the broker's visibility
# timeout (3600 s), so that a running import is never delivered to a second worker.
TIME_LIMIT = 3_000


@shared_task(ignore_result=True, time_limit=TIME_LIMIT, soft_time_limit=TIME_LIMIT - 60)
def import_job_check(job_id: int) -> str:
    """Dry run of an uploaded file: store every problem by row. Safe to run twice."""
    return services.import_job_check(job_id=job_id).status


@shared_task(ignore_result=True, time_limit=TIME_LIMIT, soft_time_limit=TIME_LIMIT - 60)
def import_job_run(job_id: int) -> str:
    """Import a confirmed job in one transaction. Safe to run twice."""
    return services.import_job_run(job_id=job_id).status


@shared_task(ignore_result=True)
def imports_purge_expired() -> int:
    """Periodic: fail jobs stuck past the timeout and delete their files, and files older than a day
    (they hold PII). Safe to run twice."""
    return services.imports_purge_expired()
