"""A whole journey through the real worker leaves no PII and no token in any log line or task argument."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from celery import signals

from institutions.models import Branch, User
from kwikid_standin.server import StandIn
from records.models import KycRecord, Status
from tests.conftest import ROOT, TOKEN, approved_record, wait_for
from uploads import services

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORKER_LOG = ROOT / ".local" / "test" / "worker.log"
SECRETS = {
    "PAN": "ABCPE1234F",
    "first name": "RAVI",
    "relative's name": "SURESH",
    "mobile": "9876543210",
    "passport number": "K1234567",
    "address": "Marine Drive",
    "token": TOKEN,
}


@pytest.fixture
def published() -> Any:
    """Every task message the test process publishes: name, args and kwargs."""
    seen: list[dict[str, Any]] = []

    def record(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        args, kw, _ = body if isinstance(body, tuple) else (body.get("args"), body.get("kwargs"), None)
        seen.append({"task": sender, "args": args, "kwargs": kw})

    signals.before_task_publish.connect(record, weak=False)
    yield seen
    signals.before_task_publish.disconnect(record)


def test_journey_logs_and_task_arguments_hold_no_pii_or_token(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    caplog: pytest.LogCaptureFixture,
    published: list[dict[str, Any]],
) -> None:
    start = WORKER_LOG.stat().st_size if WORKER_LOG.exists() else 0
    caplog.set_level(logging.DEBUG)
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 5)]
    # One record that KwikID's check rejects, so a 400 and its detail go through the worker too.
    KycRecord.objects.filter(pk=records[0].pk).update(pan="BADPAN")
    services.request_assembly()
    wait_for(
        lambda: (
            not KycRecord.objects.filter(pk__in=[r.pk for r in records], status=Status.BATCHED).exists()
            and not KycRecord.objects.filter(pk__in=[r.pk for r in records], status=Status.APPROVED).exists()
        ),
        timeout=60,
    )
    assert published, "the journey published no task: nothing was checked"
    for message in published:
        assert all(isinstance(arg, int) for arg in message["args"] or []), message
        assert not message["kwargs"], message

    worker_lines = Path(WORKER_LOG).read_bytes()[start:].decode(errors="replace")
    assert "succeeded" in worker_lines, "the worker log shows no task: nothing was checked"
    logged = "\n".join(r.getMessage() for r in caplog.records) + "\n" + worker_lines
    leaked = [name for name, value in SECRETS.items() if value in logged]
    assert leaked == []
