"""Fixtures for the fault tests: real Celery worker processes with short timings, and the sweep."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench import harness
from tests.conftest import wait_for
from uploads import services
from uploads.models import UploadBatch

# Short enough for quick tests, and consistent with the worker's start-up check (uploads.E003): the lease
# must outlast connect + read timeouts, or a live send could be reclaimed.
FAST_TIMINGS: dict[str, Any] = {
    "UPLOAD_LEASE_SECONDS": 3,
    "KWIKID_CONNECT_TIMEOUT": 1.0,
    "KWIKID_READ_TIMEOUT": 1.5,
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    # Lets the worker fixture show the workers' logs when the test itself failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@dataclass
class Worker:
    """One `celery worker --pool=solo` process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, no cleanup, as when the machine or the OOM killer takes it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), SIGKILL after 15 s."""
        harness.stop_process(self.process, timeout=15)


StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(
    transactional_db: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartWorker]:
    """A factory of real worker processes on this test's database and Redis; every one is stopped after.

    ``start_worker(UPLOAD_MAX_ATTEMPTS=3, ...)`` overrides environment variables on top of FAST_TIMINGS;
    ``ready=False`` returns without waiting for the worker to say it is ready.
    """
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("Worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL: run them with `make test`.")
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # a clean queue: tests share nothing
    workers: list[Worker] = []

    def start(*, ready: bool = True, **overrides: Any) -> Worker:
        name = f"faults{len(workers) + 1}"
        env = harness.worker_environment(
            harness.database_url(settings.DATABASES["default"]),
            **{"DJANGO_SECRET_KEY": "test-worker", **FAST_TIMINGS, **overrides},
        )
        log_path = tmp_path / f"{name}.log"
        process = harness.start_worker(env, log_path, name=name)
        worker = Worker(name=name, process=process, log_path=log_path, env=env)
        workers.append(worker)
        if ready:
            wait_for(lambda: harness.worker_ready(log_path) or not worker.alive, timeout=30, interval=0.1)
            assert worker.alive, f"worker {name} did not start:\n{worker.log()[-3000:]}"
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for worker in workers:
                print(f"----- log of worker {worker.name} -----\n{worker.log()[-6000:]}")


@pytest.fixture
def fast_timings(settings: Any) -> dict[str, Any]:
    """The workers' timings, also in this process, for the services the test calls itself."""
    for key, value in FAST_TIMINGS.items():
        setattr(settings, key, value)
    return FAST_TIMINGS


def sweep_after_lease(batch_id: int, timeout: float = 30.0) -> dict[str, int]:
    """Wait until the batch's lease has expired, then run the periodic sweep (as beat would)."""

    def lease_expired() -> bool:
        lease = UploadBatch.objects.values_list("lease_expires_at", flat=True).get(pk=batch_id)
        return lease is not None and lease < timezone.now()

    wait_for(lease_expired, timeout=timeout, interval=0.1)
    return services.uploads_sweep()


def approved_as(record_id: int, **changes: Any) -> None:
    """Make an approved record look as if it had been approved with ``changes``: its fields and, as approval
    does, its frozen payload (what is sent)."""
    from codelists.selectors import code_book
    from records import services as record_services
    from records.models import KycRecord

    KycRecord.objects.filter(pk=record_id).update(**changes)
    record = KycRecord.objects.get(pk=record_id)
    today = timezone.localdate()
    stamp = record_services.check_stamp(today)
    frozen = record_services.record_freeze_values(
        record_services.record_data(record), stamp=stamp, today=today, codes=code_book()
    )
    KycRecord.objects.filter(pk=record_id).update(**frozen)
