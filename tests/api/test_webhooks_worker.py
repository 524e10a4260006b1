"""End to end with a real Celery worker process: a client's record moves, the worker derives the
deliveries and POSTs them, signed, to a local receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from api import tasks, webhooks
from api.models import WebhookDelivery
from bench import harness
from institutions.models import Branch
from records import services as record_services
from tests.api.webhook_helpers import SECRET, Receiver, make_api_client, running_receiver
from tests.conftest import new_record, wait_for


@pytest.fixture
def webhook_worker(transactional_db: None, tmp_path: Path) -> Iterator[Path]:
    """A real worker on this test's database and Redis that may call a plain-http local receiver."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("Worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL: run them with `make test`.")
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # a clean queue: tests share nothing
    env = harness.worker_environment(
        harness.database_url(settings.DATABASES["default"]),
        DJANGO_SECRET_KEY="test-worker",
        WEBHOOK_ALLOW_HTTP="true",
        WEBHOOK_READ_TIMEOUT=2,
    )
    log_path = tmp_path / "worker.log"
    worker = harness.start_worker(env, log_path, name="webhooks")
    try:
        wait_for(lambda: harness.worker_ready(log_path) or worker.poll() is not None, timeout=30)
        assert worker.poll() is None, log_path.read_text(errors="replace")[-3000:]
        yield log_path
    finally:
        harness.stop_process(worker, timeout=15)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_a_worker_posts_each_status_change_signed_in_order(
    webhook_worker: Path, receiver: Receiver, branch_a: Branch
) -> None:
    client = make_api_client(branch_a, webhook_url=receiver.url)
    record = new_record(client.user, branch_a, 1)
    record_services.record_submit(actor=client.user, record=record)

    tasks.webhook_deliveries_derive.delay()

    wait_for(lambda: len(receiver.received) >= 2, timeout=30)
    bodies = [json.loads(request.body) for request in receiver.received]
    assert [(b["kyc_ref_no"], b["status"]) for b in bodies] == [
        (record.kyc_ref_no, "draft"),
        (record.kyc_ref_no, "submitted"),
    ]
    for request in receiver.received:
        assert webhooks.verify_signature(
            SECRET, request.headers["X-CKYC-Timestamp"], request.body, request.headers["X-CKYC-Signature"]
        )
    wait_for(
        lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED).count() == 2,
        timeout=10,
    )
    assert {d.pk: d.body.encode() for d in WebhookDelivery.objects.all()} == {
        int(r.headers["X-CKYC-Delivery"]): r.body for r in receiver.received
    }
