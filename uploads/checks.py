"""Start-up checks that keep the Celery settings consistent with the upload timings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .services import RETRY_CAP_SECONDS


@register()
def check_upload_timings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    raw = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    visibility = int(str(raw)) if raw is not None else None
    # A countdown longer than Redis's visibility timeout is delivered again and again (celery#2599).
    if visibility is not None and visibility < 4 * RETRY_CAP_SECONDS:
        errors.append(
            Error(
                f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) must be at least {4 * RETRY_CAP_SECONDS} s: "
                f"four times the longest retry wait.",
                id="uploads.E001",
            )
        )
    http_budget = settings.KWIKID_CONNECT_TIMEOUT + settings.KWIKID_READ_TIMEOUT
    if http_budget >= settings.CELERY_TASK_SOFT_TIME_LIMIT:
        errors.append(
            Error(
                f"The task time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s) must exceed the KwikID "
                f"connect and read timeouts together ({http_budget:g} s), or a slow answer kills the worker "
                "mid-call.",
                id="uploads.E002",
            )
        )
    if http_budget >= settings.UPLOAD_LEASE_SECONDS:
        errors.append(
            Error(
                f"UPLOAD_LEASE_SECONDS ({settings.UPLOAD_LEASE_SECONDS}) must exceed the KwikID timeouts "
                f"({http_budget:g} s), or a live send could be reclaimed by another worker.",
                id="uploads.E003",
            )
        )
    return errors
