"""Fixtures for the registry checks: records accepted by KwikID, a fake search client, a real worker.

The fake stands in for ``kwikid.client.KwikIDClient.search_pan``: it answers each PAN from a script of
results or errors (the last one repeats) and counts the calls, so a test states exactly what KwikID says.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench import harness
from institutions.models import Branch, User
from kwikid.client import KwikIDError
from kwikid.search import SearchFound, SearchNotFound, SearchResult, SearchUnreadable
from records import moves as record_moves
from records.models import KycRecord
from registry import services
from tests.conftest import approved_record, wait_for

KIN = "10012345678901"

Answer = SearchResult | KwikIDError


def pan_for(n: int) -> str:
    """A distinct valid PAN per record number (fourth letter P: an individual)."""
    return f"ABCP{chr(ord('A') + n % 26)}{n:04d}F"


def accept(record_ids: list[int], *, at: datetime | None = None) -> None:
    """KwikID accepted these approved records (as the upload worker records it), at ``at`` if given."""
    with transaction.atomic():
        record_moves.records_mark_batched(record_ids=record_ids)
        record_moves.records_mark_uploaded(record_ids=record_ids, message="Accepted for processing")
        if at is not None:
            KycRecord.objects.filter(pk__in=record_ids).update(uploaded_at=at)


def uploaded_record(
    maker: User, checker: User, branch: Branch, n: int = 1, *, at: datetime | None = None, **overrides: Any
) -> KycRecord:
    """An approved record that KwikID has accepted; its PAN is pan_for(n) unless given."""
    overrides.setdefault("pan", pan_for(n))
    record = approved_record(maker, checker, branch, n, **overrides)
    accept([record.pk], at=at)
    return KycRecord.objects.get(pk=record.pk)


def found(kyc_date: date | None = None, kin: str = KIN, shape: str = "flat") -> SearchFound:
    return SearchFound(
        kin=kin, kyc_date=kyc_date, updated_date=None, shape=shape, status_code=200, elapsed_ms=12
    )


def not_found() -> SearchNotFound:
    return SearchNotFound(reason="Record does not exist", status_code=200, elapsed_ms=9)


def unreadable(excerpt: str) -> SearchUnreadable:
    return SearchUnreadable(excerpt=excerpt, status_code=200, elapsed_ms=7)


class FakeSearch:
    """Answers search_pan from a script per PAN (the last answer repeats); unknown PANs are not found."""

    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {}
        self.calls: Counter[str] = Counter()
        self.on_call: Callable[[str], None] | None = None
        self._lock = threading.Lock()  # passes in threads share it

    def answer(self, pan: str, *answers: Answer) -> None:
        self.script[pan] = list(answers)

    def search_pan(self, pan: str) -> SearchResult:
        with self._lock:
            self.calls[pan] += 1
            answers = self.script.get(pan) or [not_found()]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if self.on_call is not None:
            self.on_call(pan)
        if isinstance(answer, KwikIDError):
            raise answer
        return answer


@pytest.fixture
def fake_search(monkeypatch: pytest.MonkeyPatch) -> FakeSearch:
    """Every pass in this test searches through one FakeSearch instead of KwikID."""
    fake = FakeSearch()
    monkeypatch.setattr(services, "search_client", lambda institution: fake)
    return fake


@pytest.fixture
def registry_timings(settings: Any) -> None:
    settings.REGISTRY_FIRST_CHECK_SECONDS = 600
    settings.REGISTRY_MAX_CHECK_INTERVAL_SECONDS = 2 * 24 * 3600
    settings.REGISTRY_CHECK_BATCH = 50


def later(seconds: float) -> datetime:
    """A moment ``seconds`` from now (a pass's ``now``)."""
    return timezone.now() + timedelta(seconds=seconds)


# --- a real worker ---------------------------------------------------------------------------------

# The worker's schedule, short enough for tests: the first search a second after acceptance, then waits
# of 3 s and 4 s (the cap).
WORKER_TIMINGS: dict[str, Any] = {
    "REGISTRY_FIRST_CHECK_SECONDS": 1,
    "REGISTRY_MAX_CHECK_INTERVAL_SECONDS": 4,
    "REGISTRY_CHECK_BATCH": 2,
    "KWIKID_CONNECT_TIMEOUT": 1.0,
    "KWIKID_READ_TIMEOUT": 2.0,
}


@pytest.fixture
def registry_worker(transactional_db: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A real Celery worker process on this test's PostgreSQL database and Redis, with WORKER_TIMINGS;
    yields its log's path (printed when the test failed)."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("Worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL: run them with `make test`.")
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # a clean queue: tests share nothing
    env = harness.worker_environment(
        harness.database_url(settings.DATABASES["default"]), DJANGO_SECRET_KEY="test-worker", **WORKER_TIMINGS
    )
    log_path = tmp_path / "registry-worker.log"
    worker = harness.start_worker(env, log_path, name="registry")
    try:
        wait_for(
            lambda: harness.worker_ready(log_path) or worker.poll() is not None, timeout=30, interval=0.1
        )
        assert worker.poll() is None, f"the worker did not start:\n{log_path.read_text()[-3000:]}"
        yield log_path
    finally:
        harness.stop_process(worker, timeout=15)
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(f"----- worker log -----\n{log_path.read_text(errors='replace')[-6000:]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    # Lets the worker fixture show the worker's log when the test itself failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def ring_until(predicate: Callable[[], Any], *, timeout: float = 40.0, every: float = 0.5) -> Any:
    """Queue a checking pass every ``every`` seconds (as beat does every minute) until ``predicate()``."""
    from registry import tasks

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        tasks.registrations_check.delay()
        time.sleep(every)
    pytest.fail(f"Condition not met within {timeout} s")


def ring_for(seconds: float, *, every: float = 0.5) -> None:
    """Queue a checking pass every ``every`` seconds for ``seconds`` (to show that nothing happens)."""
    from registry import tasks

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tasks.registrations_check.delay()
        time.sleep(every)
    time.sleep(1)  # the last pass queued has run
