"""The Celery application: configured from Django settings (CELERY_*), tasks found in each app."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckycportal.settings")

app = Celery("ckycportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def refuse_inconsistent_settings(**kwargs: Any) -> None:
    """A worker does not start on settings that Django's checks reject (e.g. retry waits vs visibility)."""
    from django.core.checks import run_checks

    serious = [str(message) for message in run_checks() if message.is_serious()]
    if serious:
        raise RuntimeError("Refusing to start the worker:\n" + "\n".join(serious))


@signals.task_prerun.connect
def close_old_connections(**kwargs: Any) -> None:
    """As before a request: drop a database connection that failed or outlived CONN_MAX_AGE (the kept
    connections of CELERY_DB_REUSE_MAX would otherwise carry a broken one into every later task)."""
    from django.db import close_old_connections as close

    close()


@signals.worker_shutdown.connect
def close_connections(**kwargs: Any) -> None:
    """A stopping worker says goodbye to PostgreSQL: the connection it kept ends with it, not after it."""
    from django.db import connections

    connections.close_all()
