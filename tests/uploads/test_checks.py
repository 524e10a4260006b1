from __future__ import annotations

from typing import Any

from uploads.checks import check_upload_timings


def test_current_settings_pass_the_upload_timing_checks() -> None:
    assert check_upload_timings() == []


def test_visibility_timeout_shorter_than_retry_waits_is_refused(settings: Any) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    assert [e.id for e in check_upload_timings()] == ["uploads.E001"]


def test_task_time_limit_within_the_http_timeouts_is_refused(settings: Any) -> None:
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 30
    assert "uploads.E002" in [e.id for e in check_upload_timings()]


def test_lease_shorter_than_the_http_timeouts_is_refused(settings: Any) -> None:
    settings.UPLOAD_LEASE_SECONDS = 10
    assert "uploads.E003" in [e.id for e in check_upload_timings()]
