"""The whole pipeline through a real Celery worker process, real Redis and real PostgreSQL."""

from __future__ import annotations

import subprocess
import time

import pytest
from django.db import transaction

from institutions.models import Branch, User
from kwikid_standin.server import StandIn
from records.models import KycRecord, Status
from tests.conftest import approved_record, wait_for
from uploads import services
from uploads.models import BatchStatus, UploadBatch

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_approved_records_reach_kwikid_once_through_a_real_worker(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 8)]
    services.request_assembly()  # outside a transaction here: rings the doorbell at once

    def all_uploaded() -> bool:
        return set(
            KycRecord.objects.filter(pk__in=[r.pk for r in records]).values_list("status", flat=True)
        ) == {Status.UPLOADED}

    wait_for(all_uploaded, timeout=60)
    assert set(UploadBatch.objects.values_list("status", flat=True)) == {BatchStatus.ACCEPTED}
    assert UploadBatch.objects.count() == 3  # 7 records, at most 3 a request
    stats = kwikid.stats()
    assert stats["accepted_records"] == 7
    assert stats["duplicates"] == 0
    assert worker_alive(celery_worker_process)


def test_retry_after_a_server_error_goes_through_the_worker(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kwikid.set_faults(fail_next=1, status=502)
    record = approved_record(alice, bob, branch_a, 1)
    services.request_assembly()
    batch = wait_for(lambda: UploadBatch.objects.filter(status=BatchStatus.RETRY_WAIT).first(), timeout=30)
    assert batch.attempt_count == 1
    # The first backoff is 2.5 to 5 seconds: the worker sends again by itself.
    wait_for(lambda: KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED, timeout=30)
    assert kwikid.stats()["accepted_records"] == 1
    assert list(UploadBatch.objects.get(pk=batch.pk).attempts.values_list("status_code", flat=True)) == [
        502,
        200,
    ]


def test_rolled_back_transaction_enqueues_nothing(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    class Rollback(Exception):
        pass

    record = approved_record(alice, bob, branch_a, 1)  # committed; no beat runs in tests
    with pytest.raises(Rollback), transaction.atomic():
        services.request_assembly()
        raise Rollback
    time.sleep(3)  # time enough for a wrongly sent doorbell to be handled by the idle worker
    assert KycRecord.objects.get(pk=record.pk).status == Status.APPROVED
    assert kwikid.stats()["requests"] == 0
    # The same call after a commit does reach the worker: the silence above was the rollback's doing.
    services.request_assembly()
    wait_for(lambda: KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED, timeout=30)


def worker_alive(worker: subprocess.Popen[bytes]) -> bool:
    return worker.poll() is None


def test_a_task_keeps_the_database_connection_until_it_outlives_conn_max_age() -> None:
    # Celery's Django fixup would close it around every task (a new PostgreSQL backend per batch sent);
    # kept, it is still checked before each task as before a request.
    from celery import signals
    from django.db import connection

    from ckycportal.celery import app

    assert app.conf.get("CELERY_DB_REUSE_MAX")
    connection.ensure_connection()
    signals.task_prerun.send(sender=None)
    assert connection.connection is not None
    connection.close_at = time.monotonic() - 1
    signals.task_prerun.send(sender=None)
    assert connection.connection is None


def test_a_stopping_worker_closes_the_database_connection_it_kept() -> None:
    from celery import signals
    from django.db import connection

    connection.ensure_connection()
    signals.worker_shutdown.send(sender=None)
    assert connection.connection is None
