"""The fault table of RELIABILITY.md, row by row, through real worker processes, Redis and PostgreSQL.

Every test injects its fault with the stand-in's controls (or by killing a worker, or by pointing this
process at a dead broker) and ends with assert_invariant: every approved record in exactly one final state,
and no KwikID counting a record twice.

The row "transaction rolled back after an enqueue -> no task runs" is
tests/uploads/test_worker.py::test_rolled_back_transaction_enqueues_nothing.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from ckycportal.celery import app
from institutions.models import Branch, Institution, Role, User
from kwikid_standin.server import StandIn
from records.models import KycRecord, RecordEvent, Status
from records.services import RecordConflict, record_approve, record_submit
from tests.conftest import TOKEN, approved_record, make_user, new_record, wait_for
from tests.uploads.conftest import StartWorker, sweep_after_lease
from uploads import services, tasks
from uploads.institution import institution_configure
from uploads.models import BatchItem, BatchStatus, UploadAttempt, UploadBatch

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


# --- helpers --------------------------------------------------------------------------------------------


def approve(maker: User, checker: User, branch: Branch, count: int, first: int = 1) -> list[KycRecord]:
    return [approved_record(maker, checker, branch, n) for n in range(first, first + count)]


def all_in(records: Iterable[KycRecord], status: str) -> Callable[[], bool]:
    ids = [r.pk for r in records]

    def check() -> bool:
        return set(KycRecord.objects.filter(pk__in=ids).values_list("status", flat=True)) == {status}

    return check


def batch_status(batch_id: int) -> str:
    return UploadBatch.objects.values_list("status", flat=True).get(pk=batch_id)


def assert_invariant(
    records: list[KycRecord], *kwikids: StandIn, parked: frozenset[str] = frozenset()
) -> None:
    """Every record in exactly one final state, and no KwikID saw a record twice.

    Final: uploaded (accepted once by KwikID), rejected (back with its maker, never accepted), or still
    batched in a batch whose status is in ``parked`` (where the fault table deliberately leaves it: an
    UNKNOWN batch waiting for an admin, a FAILED one flagged).
    """
    accepted: Counter[str] = Counter()
    for server in kwikids:
        stats = server.stats()
        assert stats["duplicates"] == 0, stats["accepted"]
        accepted.update(stats["accepted"])
    fresh = list(KycRecord.objects.filter(pk__in=[r.pk for r in records]))
    assert len(fresh) == len(records)
    for record in fresh:
        where = f"record {record.kyc_ref_no} ({record.status})"
        # A record re-batched after a partial rejection keeps a REQUEUED item in its first batch.
        items = list(
            BatchItem.objects.filter(record=record)
            .exclude(outcome=BatchItem.Outcome.REQUEUED)
            .select_related("batch")
        )
        assert len(items) == 1, f"{where} is in {len(items)} batches"
        item = items[0]
        if record.status == Status.UPLOADED:
            assert (item.outcome, item.batch.status) == (BatchItem.Outcome.ACCEPTED, BatchStatus.ACCEPTED)
            assert accepted[record.kyc_ref_no] == 1, where
        elif record.status == Status.REJECTED:
            assert (item.outcome, item.batch.status) == (BatchItem.Outcome.REJECTED, BatchStatus.REJECTED)
            assert record.upload_message, where
            assert accepted[record.kyc_ref_no] == 0, where
        elif record.status == Status.BATCHED and item.batch.status in parked:
            assert accepted[record.kyc_ref_no] <= 1, where
        else:
            pytest.fail(f"{where} is not in a final state: batch {item.batch.pk} is {item.batch.status}")


def set_timings(settings: Any, timings: dict[str, Any]) -> None:
    for key, value in timings.items():
        setattr(settings, key, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Run each target in its own thread (so its own PostgreSQL connection), released together."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@contextmanager
def uncommitted_attempt(batch_id: int) -> Iterator[psycopg.Connection[Any]]:
    """Another session holds attempt 1 of the batch, uncommitted; rolled back on exit.

    A worker that claims the batch then blocks on the unique index (batch, number) when it writes its own
    attempt 1: after the claim, before the POST.
    """
    db = django_settings.DATABASES["default"]
    conn = psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None, host=db["HOST"], port=db["PORT"]
    )
    try:
        conn.execute(
            "INSERT INTO uploads_uploadattempt (batch_id, number, started_at, response_body, error_class, "
            "error_message) VALUES (%s, 1, now(), '', '', '')",
            [batch_id],
        )
        yield conn
    finally:
        conn.rollback()
        conn.close()


def backend_blocked_on_attempt_insert() -> int | None:
    """The PostgreSQL backend waiting for a lock to insert an attempt row, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"uploads_uploadattempt\"%%'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def terminate_backend(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: not backend_exists(pid), timeout=10, interval=0.05)


def backend_exists(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


@contextmanager
def broker_down() -> Iterator[str]:
    """This process's Celery app publishes to a port where no Redis listens, as when Redis is down."""
    original = app.conf.broker_url
    dead = f"redis://127.0.0.1:{free_port()}/0"

    def reset_pools() -> None:
        # The producer pools are cached per app; dropping them makes the next publish use the conf.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = dead
    reset_pools()
    try:
        assert app.conf.broker_write_url == dead
        yield dead
    finally:
        app.conf.broker_url = original
        reset_pools()


# --- the fault table ------------------------------------------------------------------------------------


def test_worker_killed_before_the_post_is_reclaimed_after_its_lease_and_sent_once(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    records = approve(alice, bob, branch_a, 3)
    [batch_id] = services.batch_assemble()  # its doorbell waits in Redis: no worker runs yet
    with uncommitted_attempt(batch_id):
        worker = start_worker()
        pid = wait_for(backend_blocked_on_attempt_insert, timeout=20, interval=0.05)
        batch = UploadBatch.objects.get(pk=batch_id)
        assert (batch.status, batch.attempt_count) == (BatchStatus.SENDING, 1)  # claimed, leased
        assert kwikid.stats()["requests"] == 0  # and nothing posted
        worker.kill()
        # PostgreSQL notices a vanished client only when it next writes to it: left alone, the dead
        # worker's INSERT would go through once the lock is released. End that session, as its TCP
        # keepalive would, so the worker dies with nothing of its attempt written.
        terminate_backend(pid)
    assert kwikid.stats()["requests"] == 0
    assert not UploadAttempt.objects.filter(batch_id=batch_id).exists()
    assert batch_status(batch_id) == BatchStatus.SENDING  # held by a dead worker until the lease ends

    start_worker()
    assert sweep_after_lease(batch_id)["due"] == 1
    wait_for(all_in(records, Status.UPLOADED), timeout=30)
    assert list(UploadAttempt.objects.filter(batch_id=batch_id).values_list("number", "status_code")) == [
        (2, 200)
    ]
    assert kwikid.stats()["requests"] == 1
    assert_invariant(records, kwikid)


def test_worker_killed_after_the_post_leaves_the_batch_unknown_and_never_resends_it(
    start_worker: StartWorker,
    settings: Any,
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    erin: User,
) -> None:
    timings = {"UPLOAD_LEASE_SECONDS": 5, "KWIKID_CONNECT_TIMEOUT": 1.0, "KWIKID_READ_TIMEOUT": 3.5}
    set_timings(settings, timings)
    records = approve(alice, bob, branch_a, 3)
    # KwikID takes the batch 2 s after it arrives; the worker is killed in between, so it never hears.
    kwikid.set_faults(delay=2)
    worker = start_worker(**timings)
    services.request_assembly()
    wait_for(lambda: kwikid.stats()["requests"] == 1, timeout=20, interval=0.02)
    worker.kill()
    batch = UploadBatch.objects.get()
    assert batch.status == BatchStatus.SENDING
    wait_for(lambda: kwikid.stats()["accepted_records"] == 3, timeout=10)  # KwikID has the records

    start_worker(**timings)
    assert sweep_after_lease(batch.pk)["due"] == 1
    wait_for(lambda: batch_status(batch.pk) == BatchStatus.UNKNOWN, timeout=20)
    attempt = UploadAttempt.objects.get(batch=batch)  # one attempt: the reclaim did not post again
    assert attempt.error_class == "WorkerLost"
    assert set(BatchItem.objects.filter(batch=batch).values_list("outcome", flat=True)) == {
        BatchItem.Outcome.UNKNOWN
    }
    assert services.uploads_sweep()["due"] == 0  # an unknown batch is never rung again
    assert kwikid.stats()["requests"] == 1
    assert_invariant(records, kwikid, parked=frozenset({BatchStatus.UNKNOWN}))

    # Not lost: an admin who checked with KwikID settles it on the reconcile page.
    services.batch_resolve_unknown(
        actor=erin, batch_id=batch.pk, outcome="accepted", reason="KwikID support confirmed receipt."
    )
    assert kwikid.stats()["requests"] == 1
    assert_invariant(records, kwikid)


def test_server_errors_then_success_back_off_record_every_attempt_and_accept_once(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    kwikid.set_faults(fail_next=2, status=503)
    records = approve(alice, bob, branch_a, 2)
    start_worker()
    services.request_assembly()
    # The first two backoffs are 2.5-5 s and 5-10 s, each held by a Celery countdown.
    wait_for(all_in(records, Status.UPLOADED), timeout=40)
    batch = UploadBatch.objects.get()
    attempts = list(UploadAttempt.objects.filter(batch=batch).order_by("number"))
    assert [(a.number, a.status_code, a.error_class) for a in attempts] == [
        (1, 503, "KwikIDServerError"),
        (2, 503, "KwikIDServerError"),
        (3, 200, ""),
    ]
    assert all("<html" in a.response_body.lower() for a in attempts[:2])  # the error page, kept
    assert all(a.duration_ms is not None for a in attempts)
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 2.5 and gaps[1] >= 5.0, gaps
    assert batch.attempt_count == 3
    assert kwikid.stats()["requests"] == 3
    assert kwikid.stats()["accepted_records"] == 2
    assert_invariant(records, kwikid)


def test_hang_past_the_read_timeout_or_a_drop_after_the_body_frees_the_worker_and_is_unknown(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    erin: User,
) -> None:
    # One request of each: dropped unread, hung for 20 s, and accepted with the answer lost on the way back.
    kwikid.set_faults(drop_next=1, hang_next=1, hang_seconds=20, accept_then_drop_next=1)
    records = approve(alice, bob, branch_a, 9)
    worker = start_worker()
    services.request_assembly()

    def all_unknown() -> bool:
        found = list(UploadBatch.objects.values_list("status", flat=True))
        return len(found) == 3 and set(found) == {BatchStatus.UNKNOWN}

    wait_for(all_unknown, timeout=30)
    assert worker.alive
    attempts = list(UploadAttempt.objects.all())
    assert [a.error_class for a in attempts] == ["KwikIDUnknownOutcomeError"] * 3
    [hung] = [a for a in attempts if "read timeout" in a.error_message]
    assert hung.duration_ms is not None
    assert 1400 <= hung.duration_ms < 5000  # freed at the 1.5 s read timeout, not after the 20 s hang
    assert services.uploads_sweep()["due"] == 0  # unknown batches are not resent by themselves
    assert kwikid.stats()["requests"] == 3
    assert_invariant(records, kwikid, parked=frozenset({BatchStatus.UNKNOWN}))

    # The documented policy: ask KwikID which batch it has, confirm that one, resend the others.
    has = kwikid.stats()["accepted"]
    outcomes = []
    for batch in UploadBatch.objects.all():
        refs = batch.request_summary["kyc_ref_nos"]
        assert all(ref in has for ref in refs) or not any(ref in has for ref in refs)  # all or none
        outcome = "accepted" if refs[0] in has else "resend"
        outcomes.append(outcome)
        services.batch_resolve_unknown(
            actor=erin, batch_id=batch.pk, outcome=outcome, reason="Checked against KwikID's records."
        )
    assert sorted(outcomes) == ["accepted", "resend", "resend"]
    wait_for(all_in(records, Status.UPLOADED), timeout=30)
    assert kwikid.stats()["requests"] == 5
    assert kwikid.stats()["accepted_records"] == 9
    assert_invariant(records, kwikid)


def test_400_naming_some_records_returns_them_with_reasons_and_sends_the_rest(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    records = approve(alice, bob, branch_a, 3)
    detail = {
        "records[0].pan": ["PAN does not match the name on record."],
        records[2].kyc_ref_no: ["Already registered with CKYCR."],
    }
    kwikid.set_faults(
        fail_next=1, status=400, body=json.dumps({"detail": detail, "message": "Validation failed"})
    )
    start_worker()
    services.request_assembly()
    wait_for(all_in([records[0], records[2]], Status.REJECTED), timeout=30)
    wait_for(all_in([records[1]], Status.UPLOADED), timeout=30)

    first, second = UploadBatch.objects.order_by("pk")
    assert (first.status, first.response_status_code) == (BatchStatus.REJECTED, 400)
    assert first.response_detail == detail
    assert (second.status, second.record_count) == (BatchStatus.ACCEPTED, 1)
    rejected = {r.pk: r for r in KycRecord.objects.filter(status=Status.REJECTED)}
    assert "pan: PAN does not match" in rejected[records[0].pk].upload_message
    assert "Already registered" in rejected[records[2].pk].upload_message
    assert BatchItem.objects.get(batch=first, record=records[1]).outcome == BatchItem.Outcome.REQUEUED
    for record in (records[0], records[2]):
        assert RecordEvent.objects.filter(record=record, action=RecordEvent.Action.REJECTED).exists()
    assert kwikid.stats()["accepted"] == {records[1].kyc_ref_no: 1}
    assert_invariant(records, kwikid)


def test_401_mid_run_pauses_the_institution_and_a_replaced_token_resumes_sending_each_record_once(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    institution: Institution,
    alice: User,
    bob: User,
    branch_a: Branch,
    erin: User,
) -> None:
    User.objects.create_user("ada", email="ada@bank.example", role=Role.ADMIN)
    worker = start_worker(DJANGO_EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    first = approve(alice, bob, branch_a, 3)
    services.request_assembly()
    wait_for(all_in(first, Status.UPLOADED), timeout=30)

    # Mid-run, KwikID stops taking the token; the next two batches (3 + 1 records) meet the 401.
    kwikid.set_faults(token="rotated-token-0001")
    second = approve(alice, bob, branch_a, 4, first=4)
    services.request_assembly()

    def both_paused() -> bool:
        found = list(
            UploadBatch.objects.exclude(status=BatchStatus.ACCEPTED).values_list("status", flat=True)
        )
        return found == [BatchStatus.PAUSED] * 2

    wait_for(both_paused, timeout=30)
    institution.refresh_from_db()
    assert institution.sending_paused_at is not None
    assert "401" in institution.sending_paused_reason
    assert kwikid.stats()["requests"] == 2  # the second paused batch waited without a request
    # Admins are told by mail (the console backend writes into the worker's log).
    wait_for(lambda: "uploads paused for Test Bank" in worker.log(), timeout=10)

    # While paused, a newly approved record is not batched.
    third = approve(alice, bob, branch_a, 1, first=8)
    assert services.batch_assemble() == []

    institution_configure(actor=erin, institution=institution, data={}, token="rotated-token-0001")
    records = first + second + third
    wait_for(all_in(records, Status.UPLOADED), timeout=30)
    institution.refresh_from_db()
    assert institution.sending_paused_at is None
    assert kwikid.stats()["accepted_records"] == 8
    assert_invariant(records, kwikid)


def test_redis_down_when_a_record_is_approved_is_recovered_by_the_sweep(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_worker()
    records = approve(alice, bob, branch_a, 2)
    with broker_down(), caplog.at_level(logging.WARNING, logger="uploads.services"):
        services.request_assembly()  # the doorbell cannot ring: a warning, not an error for the checker
    assert "Could not enqueue batch assembly" in caplog.text
    assert all_in(records, Status.APPROVED)()
    assert not UploadBatch.objects.exists()
    assert kwikid.stats()["requests"] == 0

    # Redis is back: the periodic sweep (beat's job, run here through the worker) finds the records.
    tasks.uploads_sweep.delay()
    wait_for(all_in(records, Status.UPLOADED), timeout=30)
    assert_invariant(records, kwikid)


def test_two_workers_and_two_sweeps_at_once_take_disjoint_batches(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    mallory: User,
    dave: User,
    branch_b: Branch,
) -> None:
    kwikid.set_faults(latency_ms=100)  # sends overlap between the two workers
    workers = [start_worker(), start_worker()]
    records = approve(alice, bob, branch_a, 7) + approve(mallory, dave, branch_b, 7)

    def ring_two_worker_sweeps() -> None:
        tasks.uploads_sweep.delay()
        tasks.uploads_sweep.delay()

    # Two sweeps in this process (own connections) and, at the same moment, one in each worker.
    results = run_in_threads(services.uploads_sweep, services.uploads_sweep, ring_two_worker_sweeps)
    assert not [r for r in results if isinstance(r, Exception)], results
    wait_for(all_in(records, Status.UPLOADED), timeout=40)

    per_record = Counter(BatchItem.objects.values_list("record_id", flat=True))
    assert per_record == Counter({r.pk: 1 for r in records})
    for batch in UploadBatch.objects.all():
        branches = set(batch.items.values_list("record__branch_id", flat=True))
        assert branches == {batch.branch_id}
        assert 1 <= batch.record_count <= 3  # the institution's maximum
        assert batch.status == BatchStatus.ACCEPTED
    assert all(worker.alive for worker in workers)
    assert kwikid.stats()["accepted_records"] == 14
    assert_invariant(records, kwikid)


def test_a_backlog_starts_sending_before_it_is_all_assembled_and_sends_each_record_once(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    mallory: User,
    dave: User,
    branch_b: Branch,
) -> None:
    # Two batches a run: each run queues the next after its first batch, behind that batch's send. The queue
    # is first in, first out, so the first batch is sent before the third is made; within a run the
    # branches take turns.
    worker = start_worker(UPLOAD_ASSEMBLE_BATCHES_PER_RUN=2)
    records = approve(alice, bob, branch_a, 7) + approve(mallory, dave, branch_b, 4)  # 3 + 2 batches
    tasks.batch_assemble.delay()
    wait_for(all_in(records, Status.UPLOADED), timeout=40)

    batches = list(UploadBatch.objects.order_by("created_at", "pk"))
    assert len(batches) == 5
    assert batches[0].finished_at < batches[2].created_at
    assert [b.branch.code for b in batches] == ["BRA", "BRB", "BRA", "BRB", "BRA"]
    assert {b.status for b in batches} == {BatchStatus.ACCEPTED}
    assert worker.alive
    assert_invariant(records, kwikid)


def test_poison_batch_stops_after_its_attempts_and_is_flagged_while_others_flow(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    settings: Any,
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    settings.UPLOAD_MAX_ATTEMPTS = 3
    # The poison: an institution whose KwikID answers every request with a 500.
    with StandIn(token=TOKEN) as poisoned_kwikid:
        poisoned_kwikid.set_faults(fail_next=1000, status=500)
        other = Institution.objects.create(
            name="Other Bank",
            fi_code="OTHER01",
            region_code="MH",
            cersai_username="OTHERUSER",
            api_base_url=poisoned_kwikid.url,
            api_token=TOKEN,
            max_records_per_request=3,
        )
        branch_p = Branch.objects.create(institution=other, code="BRP", name="Branch P")
        poisoned = approve(
            make_user("pat", Role.MAKER, branch_p), make_user("quinn", Role.CHECKER, branch_p), branch_p, 2
        )
        healthy = approve(alice, bob, branch_a, 2)
        start_worker(UPLOAD_MAX_ATTEMPTS=3)
        services.request_assembly()

        wait_for(all_in(healthy, Status.UPLOADED), timeout=30)
        poison = UploadBatch.objects.get(institution=other)
        wait_for(lambda: batch_status(poison.pk) == BatchStatus.RETRY_WAIT, timeout=20)
        # While the poisoned batch waits for its next attempt, newly approved records still flow.
        later = approve(alice, bob, branch_a, 2, first=3)
        services.request_assembly()
        wait_for(all_in(later, Status.UPLOADED), timeout=30)
        assert batch_status(poison.pk) != BatchStatus.FAILED  # its 3rd attempt is >= 7.5 s after its 1st
        healthy += later

        wait_for(lambda: batch_status(poison.pk) == BatchStatus.FAILED, timeout=40)
        poison.refresh_from_db()
        assert poison.attempt_count == 3
        assert "Gave up after 3 attempts" in poison.error
        assert (
            list(poison.attempts.values_list("status_code", "error_class"))
            == [(500, "KwikIDServerError")] * 3
        )
        finished = UploadBatch.objects.filter(institution__fi_code="TEST01").values_list(
            "finished_at", flat=True
        )
        assert poison.finished_at is not None
        assert all(when is not None and when < poison.finished_at for when in finished)
        assert services.uploads_sweep()["due"] == 0  # stopped: the sweep does not ring a failed batch
        assert poisoned_kwikid.stats()["requests"] == 3
        assert_invariant(healthy + poisoned, kwikid, poisoned_kwikid, parked=frozenset({BatchStatus.FAILED}))


def test_the_same_record_approved_by_two_managers_at_once_moves_once_and_the_other_gets_a_conflict(
    start_worker: StartWorker,
    fast_timings: dict[str, Any],
    kwikid: StandIn,
    alice: User,
    bob: User,
    carol: User,
    branch_a: Branch,
) -> None:
    start_worker(ready=False)
    records = []
    for n in range(1, 6):  # a few rounds, so that some of them overlap inside PostgreSQL
        record = record_submit(actor=alice, record=new_record(alice, branch_a, n))
        bobs_copy = KycRecord.objects.get(pk=record.pk)  # each manager's page shows "submitted"
        carols_copy = KycRecord.objects.get(pk=record.pk)
        results = run_in_threads(
            lambda c=bobs_copy: record_approve(actor=bob, record=c),
            lambda c=carols_copy: record_approve(actor=carol, record=c),
        )
        winners = [r for r in results if isinstance(r, KycRecord)]
        conflicts = [r for r in results if isinstance(r, RecordConflict)]
        assert (len(winners), len(conflicts)) == (1, 1), results
        assert "meanwhile" in str(conflicts[0])
        events = RecordEvent.objects.filter(record=record, action=RecordEvent.Action.APPROVED)
        assert events.count() == 1
        fresh = KycRecord.objects.get(pk=record.pk)
        assert fresh.status == Status.APPROVED
        assert fresh.reviewed_by_id == events.get().actor_id == winners[0].reviewed_by_id
        records.append(fresh)

    services.request_assembly()
    wait_for(all_in(records, Status.UPLOADED), timeout=30)
    assert_invariant(records, kwikid)
