"""Assembling and sending batches against the stand-in over real HTTP, on the real database.

Sending is called directly here (the queue is replaced by a recorder); tests/uploads/test_worker.py runs
the same path through a real Celery worker process.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import ERROR, get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ckycportal.errors import ActionRefused, PortalError
from institutions.models import Branch, Institution, User
from kwikid_standin.server import StandIn
from records import moves as record_moves
from records.models import KycRecord, RecordEvent, Status
from tests.conftest import approved_record, copy_record, otp_login
from tests.uploads.conftest import approved_as
from uploads import services, tasks
from uploads.models import BatchItem, BatchStatus, UploadAttempt, UploadBatch

pytestmark = pytest.mark.django_db


class Doorbell:
    """Stands in for the Celery queue: records what would have been enqueued."""

    def __init__(self) -> None:
        self.rung: list[tuple[int, float]] = []

    def __call__(self, batch_id: int, countdown: float) -> None:
        self.rung.append((batch_id, countdown))


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> Doorbell:
    doorbell = Doorbell()
    monkeypatch.setattr(services, "_enqueue_send", doorbell)
    monkeypatch.setattr(services, "_enqueue_assemble", lambda: None)
    return doorbell


@pytest.fixture
def approved(alice: User, bob: User, branch_a: Branch) -> list[KycRecord]:
    return [approved_record(alice, bob, branch_a, n) for n in range(1, 6)]


def send_all(doorbell: Doorbell | None = None) -> list[services.SendOutcome]:
    return [services.batch_send(batch_id=pk, enqueue=doorbell) for pk in services.batch_assemble()]


def statuses(records: list[KycRecord]) -> list[str]:
    return list(
        KycRecord.objects.filter(pk__in=[r.pk for r in records])
        .order_by("pk")
        .values_list("status", flat=True)
    )


def test_assemble_splits_approved_records_into_batches_no_larger_than_the_maximum(
    approved: list[KycRecord],
) -> None:
    batch_ids = services.batch_assemble()
    sizes = sorted(UploadBatch.objects.filter(pk__in=batch_ids).values_list("record_count", flat=True))
    assert sizes == [2, 3]  # the institution fixture allows 3 records a request
    assert set(statuses(approved)) == {Status.BATCHED}


def test_assemble_twice_puts_each_record_in_exactly_one_batch(approved: list[KycRecord]) -> None:
    services.batch_assemble()
    assert services.batch_assemble() == []
    assert BatchItem.objects.count() == len(approved)


def test_assemble_makes_one_batch_per_branch(
    alice: User, bob: User, branch_a: Branch, branch_b: Branch, mallory: User, dave: User
) -> None:
    approved_record(alice, bob, branch_a, 1)
    approved_record(mallory, dave, branch_b, 1)
    batches = UploadBatch.objects.filter(pk__in=services.batch_assemble())
    assert sorted(b.branch.code for b in batches) == ["BRA", "BRB"]


def test_accepted_batch_marks_records_uploaded_and_keeps_kwikid_message(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    outcomes = send_all()
    assert {o.status for o in outcomes} == {BatchStatus.ACCEPTED}
    assert set(statuses(approved)) == {Status.UPLOADED}
    batch = UploadBatch.objects.order_by("pk").first()
    assert batch.response_status_code == 200
    assert batch.response_status == "success"
    assert "accepted" in batch.response_message
    assert kwikid.stats()["accepted_records"] == len(approved)
    assert kwikid.stats()["duplicates"] == 0


def test_request_carries_bearer_token_and_institution_fields(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    send_all()
    last = kwikid.stats()["last_request"]
    headers = {k.lower(): v for k, v in last["headers"].items()}
    assert headers["authorization"] == "Bearer test-token-0123456789"
    assert {k: last["body"][k] for k in ("fi_code", "version", "region_code", "username", "branch_code")} == {
        "fi_code": "TEST01",
        "version": "V1.3",
        "region_code": "MH",
        "username": "TESTUSER",
        "branch_code": "BRA",
    }


def test_sending_a_finished_batch_again_sends_nothing(approved: list[KycRecord], kwikid: StandIn) -> None:
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)
    again = services.batch_send(batch_id=batch_id)
    assert again.status == BatchStatus.ACCEPTED
    assert kwikid.stats()["requests"] == 1


def test_kwikid_quoting_submitted_values_is_kept_and_shown_with_identifiers_masked(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    # A real KwikID may quote what was sent: the PAN and the mobile number reach no table in clear.
    pan, mobile = approved[1].pan, "9876543210"
    kwikid.set_faults(
        fail_next=1,
        status=400,
        content_type="application/json",
        body=json.dumps(
            {
                "detail": {"records[1].pan": [f"PAN {pan} does not match the name"]},
                "message": f"Refused {pan}, mobile {mobile}",
            }
        ),
    )
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)

    rejected = KycRecord.objects.get(pk=approved[1].pk)
    batch = UploadBatch.objects.get(pk=batch_id)
    attempt = batch.attempts.get()
    item = batch.items.get(record=rejected)
    kept = [rejected.upload_message, batch.response_message, json.dumps(batch.response_detail)]
    kept += [attempt.response_body, item.message, rejected.events.last().reason]
    for text in kept:
        assert pan not in text and mobile not in text, text
    assert "does not match the name" in rejected.upload_message  # the reason itself survives


def test_400_naming_one_record_rejects_it_and_requeues_the_others(
    approved: list[KycRecord], kwikid: StandIn, institution: Institution
) -> None:
    # KwikID's business check (beyond its schema) refuses the second record and names it by index.
    kwikid.set_faults(
        fail_next=1,
        status=400,
        content_type="application/json",
        body='{"detail": {"records[1].pan": ["PAN does not match the name"]}, "message": "Refused"}',
    )
    batch_id = services.batch_assemble()[0]
    outcome = services.batch_send(batch_id=batch_id)
    assert outcome.status == BatchStatus.REJECTED
    rejected = KycRecord.objects.get(pk=approved[1].pk)
    assert rejected.status == Status.REJECTED
    assert "pan" in rejected.upload_message
    assert statuses([approved[0], approved[2]]) == [Status.APPROVED, Status.APPROVED]
    batch = UploadBatch.objects.get(pk=batch_id)
    assert batch.response_status_code == 400
    assert batch.response_detail
    assert RecordEvent.objects.filter(record=rejected, action=RecordEvent.Action.REJECTED).exists()


def test_400_naming_no_record_rejects_the_whole_batch_with_the_message(approved: list[KycRecord]) -> None:
    Institution.objects.update(fi_code="")  # a header field the stand-in requires
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)
    items = BatchItem.objects.filter(batch_id=batch_id)
    assert {i.outcome for i in items} == {BatchItem.Outcome.REJECTED}
    assert {KycRecord.objects.get(pk=i.record_id).status for i in items} == {Status.REJECTED}


def test_401_pauses_the_institution_and_its_batches(
    approved: list[KycRecord], kwikid: StandIn, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from institutions.models import Role

    User.objects.create_user("ada", email="ada@bank.example", role=Role.ADMIN)
    kwikid.set_faults(token="a-different-token")
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = send_all()
    assert [o.status for o in outcomes] == [BatchStatus.PAUSED, BatchStatus.PAUSED]
    institution = Institution.objects.get()
    assert institution.sending_paused_at is not None
    assert "401" in institution.sending_paused_reason
    assert set(statuses(approved)) == {Status.BATCHED}
    # The second batch waited without a request going out; nothing new is assembled while paused.
    assert kwikid.stats()["requests"] == 1
    assert services.batch_assemble() == []
    assert [m.to for m in mailoutbox] == [["ada@bank.example"]]


def test_replacing_the_token_resumes_and_sends_each_record_once(
    approved: list[KycRecord], kwikid: StandIn, erin: User
) -> None:
    from uploads.institution import institution_configure

    kwikid.set_faults(token="rotated-token-9876")
    send_all()
    institution = Institution.objects.get()
    institution_configure(actor=erin, institution=institution, data={}, token="rotated-token-9876")
    assert set(UploadBatch.objects.values_list("status", flat=True)) == {BatchStatus.READY}
    for batch_id in UploadBatch.objects.values_list("pk", flat=True):
        services.batch_send(batch_id=batch_id)
    assert set(statuses(approved)) == {Status.UPLOADED}
    assert kwikid.stats()["accepted_records"] == len(approved)
    assert kwikid.stats()["duplicates"] == 0


def test_server_error_waits_and_retries_with_every_attempt_recorded(
    approved: list[KycRecord], kwikid: StandIn, no_queue: Doorbell, django_capture_on_commit_callbacks: Any
) -> None:
    kwikid.set_faults(fail_next=1, status=503)
    batch_id = services.batch_assemble()[0]
    with django_capture_on_commit_callbacks(execute=True):
        first = services.batch_send(batch_id=batch_id, enqueue=no_queue)
    assert first.status == BatchStatus.RETRY_WAIT
    assert no_queue.rung[-1][0] == batch_id
    UploadBatch.objects.filter(pk=batch_id).update(next_attempt_at=timezone.now())
    second = services.batch_send(batch_id=batch_id, enqueue=no_queue)
    assert second.status == BatchStatus.ACCEPTED
    attempts = list(UploadAttempt.objects.filter(batch_id=batch_id).values_list("status_code", "error_class"))
    assert attempts == [(503, "KwikIDServerError"), (200, "")]
    assert "<html" in UploadAttempt.objects.get(batch_id=batch_id, number=1).response_body.lower()


def test_batch_is_failed_after_the_attempt_cap(
    approved: list[KycRecord], kwikid: StandIn, settings: Any
) -> None:
    settings.UPLOAD_MAX_ATTEMPTS = 2
    kwikid.set_faults(fail_next=5, status=500)
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)
    UploadBatch.objects.filter(pk=batch_id).update(next_attempt_at=timezone.now())
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.FAILED
    assert "Gave up after 2 attempts" in UploadBatch.objects.get(pk=batch_id).error


def test_retry_is_not_sent_before_it_is_due(approved: list[KycRecord], kwikid: StandIn) -> None:
    kwikid.set_faults(fail_next=1, status=500)
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.RETRY_WAIT
    assert kwikid.stats()["requests"] == 1


def test_read_timeout_marks_the_batch_unknown_and_keeps_records_batched(
    approved: list[KycRecord], kwikid: StandIn, settings: Any
) -> None:
    settings.KWIKID_READ_TIMEOUT = 0.5
    kwikid.set_faults(hang_next=1, hang_seconds=3)
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.UNKNOWN
    items = BatchItem.objects.filter(batch_id=batch_id)
    assert {KycRecord.objects.get(pk=i.record_id).status for i in items} == {Status.BATCHED}
    assert UploadAttempt.objects.get(batch_id=batch_id).error_class == "KwikIDUnknownOutcomeError"


def test_connection_refused_is_retried_not_unknown(approved: list[KycRecord]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    Institution.objects.update(api_base_url=f"http://127.0.0.1:{port}")
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.RETRY_WAIT
    assert UploadAttempt.objects.get(batch_id=batch_id).error_class == "KwikIDConnectError"


def test_worker_lost_mid_call_is_unknown_not_resent(approved: list[KycRecord], kwikid: StandIn) -> None:
    batch_id = services.batch_assemble()[0]
    # What a worker killed during the POST leaves behind: a claim with an expired lease, an open attempt.
    # The reclaim is a second claim, so it looks for that attempt (a first claim skips the look).
    UploadBatch.objects.filter(pk=batch_id).update(
        status=BatchStatus.SENDING, attempt_count=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    UploadAttempt.objects.create(batch_id=batch_id, number=1, started_at=timezone.now())
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.UNKNOWN
    assert kwikid.stats()["requests"] == 0


def test_worker_lost_before_the_call_is_reclaimed_and_sent_once(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    batch_id = services.batch_assemble()[0]
    UploadBatch.objects.filter(pk=batch_id).update(
        status=BatchStatus.SENDING, attempt_count=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    assert kwikid.stats()["requests"] == 1


def test_a_batch_held_by_a_live_worker_is_not_taken(approved: list[KycRecord], kwikid: StandIn) -> None:
    batch_id = services.batch_assemble()[0]
    UploadBatch.objects.filter(pk=batch_id).update(
        status=BatchStatus.SENDING, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.SENDING
    assert kwikid.stats()["requests"] == 0


def test_sweep_assembles_and_rings_for_due_batches(approved: list[KycRecord], no_queue: Doorbell) -> None:
    first = services.uploads_sweep()
    assert first["assembled"] == 2
    UploadBatch.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert services.uploads_sweep() == {"assembled": 0, "due": 2}


def test_no_request_goes_out_with_an_empty_token(approved: list[KycRecord], kwikid: StandIn) -> None:
    batch_id = services.batch_assemble()[0]
    Institution.objects.update(api_token="")
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.PAUSED
    assert kwikid.stats()["requests"] == 0
    assert UploadBatch.objects.get(pk=batch_id).attempt_count == 0


def test_retry_delay_grows_is_capped_and_honours_retry_after() -> None:
    assert 2.5 <= services.retry_delay(1) <= 5
    assert services.retry_delay(30) <= services.RETRY_CAP_SECONDS
    assert services.retry_delay(1, retry_after=42) >= 42


def test_retry_now_gives_a_failed_batch_fresh_attempts_and_is_audited(
    approved: list[KycRecord], kwikid: StandIn, erin: User, settings: Any
) -> None:
    from institutions.models import AuditEvent

    settings.UPLOAD_MAX_ATTEMPTS = 1
    kwikid.set_faults(fail_next=1, status=500)
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.FAILED
    services.batch_retry_now(actor=erin, batch_id=batch_id)
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    assert AuditEvent.objects.filter(action="batch_retry_now", object_id=str(batch_id), actor=erin).exists()


def test_cancel_puts_records_back_in_the_queue(approved: list[KycRecord], erin: User) -> None:
    batch_id = services.batch_assemble()[0]
    services.batch_cancel(actor=erin, batch_id=batch_id, reason="Wrong branch code configured")
    batch = UploadBatch.objects.get(pk=batch_id)
    assert batch.status == BatchStatus.CANCELLED
    ids = list(batch.items.values_list("record_id", flat=True))
    assert set(KycRecord.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.APPROVED}


def test_an_accepted_batch_cannot_be_cancelled(
    approved: list[KycRecord], kwikid: StandIn, erin: User
) -> None:
    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)
    with pytest.raises(services.BatchConflict) as refused:
        services.batch_cancel(actor=erin, batch_id=batch_id, reason="too late")
    assert isinstance(refused.value, PortalError)
    assert refused.value.message == "A batch that is accepted by kwikid cannot be cancelled."


@pytest.mark.parametrize("reason", ["", "  "])
def test_cancelling_without_a_reason_is_refused_and_changes_nothing(
    approved: list[KycRecord], erin: User, reason: str
) -> None:
    batch_id = services.batch_assemble()[0]
    with pytest.raises(ActionRefused, match="Say why the batch is cancelled"):
        services.batch_cancel(actor=erin, batch_id=batch_id, reason=reason)
    assert UploadBatch.objects.get(pk=batch_id).status == BatchStatus.READY


@pytest.mark.parametrize(
    ("outcome", "reason", "message"),
    [
        ("maybe", "Checked", "Choose whether KwikID has the batch or it is sent again."),
        ("accepted", " ", "Say how you know, for the audit trail."),
    ],
)
def test_settling_an_unknown_batch_needs_an_outcome_and_a_reason(
    approved: list[KycRecord], erin: User, outcome: str, reason: str, message: str
) -> None:
    batch_id = services.batch_assemble()[0]
    with pytest.raises(PortalError) as refused:
        services.batch_resolve_unknown(actor=erin, batch_id=batch_id, outcome=outcome, reason=reason)
    assert isinstance(refused.value, ActionRefused) and not isinstance(refused.value, ValueError)
    assert refused.value.message == message


def test_the_batch_page_shows_a_refusal_as_its_message(
    approved: list[KycRecord], erin: User, client: Client
) -> None:
    batch_id = services.batch_assemble()[0]
    otp_login(client, erin)

    response = client.post(reverse("uploads:cancel", args=[batch_id]), {"reason": ""})

    assert response.status_code == 302
    errors = [m.message for m in get_messages(response.wsgi_request) if m.level == ERROR]
    assert errors == ["Say why the batch is cancelled."]
    assert UploadBatch.objects.get(pk=batch_id).status == BatchStatus.READY


def test_tasks_are_named_after_the_service_they_call() -> None:
    assert tasks.batch_send.name == "uploads.tasks.batch_send"
    assert tasks.batch_assemble.name == "uploads.tasks.batch_assemble"
    assert tasks.uploads_sweep.name == "uploads.tasks.uploads_sweep"
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.uploads_sweep.name in scheduled
    assert not scheduled & {"uploads.tasks.sweep_uploads", "uploads.tasks.send_batch"}


def test_the_tasks_run_their_services(approved: list[KycRecord], kwikid: StandIn) -> None:
    assert tasks.batch_assemble() == 2  # five records, at most three a request
    assert tasks.uploads_sweep() == {"assembled": 0, "due": 0}
    for batch_id in UploadBatch.objects.values_list("pk", flat=True):
        assert tasks.batch_send(batch_id) == BatchStatus.ACCEPTED
    assert set(statuses(approved)) == {Status.UPLOADED}


def _unknown_batch(kwikid: StandIn, settings: Any) -> int:
    settings.KWIKID_READ_TIMEOUT = 0.5
    kwikid.set_faults(accept_then_drop_next=1)
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.UNKNOWN
    return batch_id


def test_unknown_resolved_as_accepted_marks_records_uploaded_without_resending(
    approved: list[KycRecord], kwikid: StandIn, erin: User, settings: Any
) -> None:
    batch_id = _unknown_batch(kwikid, settings)
    services.batch_resolve_unknown(
        actor=erin, batch_id=batch_id, outcome="accepted", reason="KwikID dashboard lists all 3"
    )
    ids = list(BatchItem.objects.filter(batch_id=batch_id).values_list("record_id", flat=True))
    assert set(KycRecord.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.UPLOADED}
    assert kwikid.stats()["requests"] == 1
    assert kwikid.stats()["duplicates"] == 0


def test_unknown_resolved_as_resend_sends_the_same_records_again(
    approved: list[KycRecord], kwikid: StandIn, erin: User, settings: Any
) -> None:
    batch_id = _unknown_batch(kwikid, settings)
    services.batch_resolve_unknown(
        actor=erin, batch_id=batch_id, outcome="resend", reason="Not on KwikID's side"
    )
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    resent = [r["kyc_ref_no"] for r in kwikid.stats()["last_request"]["body"]["records"]]
    assert resent == UploadBatch.objects.get(pk=batch_id).request_summary["kyc_ref_nos"]
    assert kwikid.stats()["requests"] == 2


def test_unknown_is_resent_automatically_only_when_kwikid_ignores_repeats(
    approved: list[KycRecord],
    kwikid: StandIn,
    settings: Any,
    no_queue: Doorbell,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Institution.objects.update(kwikid_ignores_repeated_ref_no=True)
    settings.KWIKID_READ_TIMEOUT = 0.5
    kwikid.set_faults(accept_then_drop_next=1)
    batch_id = services.batch_assemble()[0]
    with django_capture_on_commit_callbacks(execute=True):
        services.batch_send(batch_id=batch_id)
    assert UploadBatch.objects.get(pk=batch_id).status == BatchStatus.READY
    assert (batch_id, 0) in no_queue.rung
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED


def test_record_the_schema_would_refuse_never_leaves_and_goes_back_to_its_maker(
    approved: list[KycRecord], kwikid: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gender outside the API's enum slipped past in a record approved before payloads were frozen (sent
    # from its fields), and the CKYC rules (checked just before, and stricter) are taken out of the way:
    # the schema still stops it.
    monkeypatch.setattr(services, "_failing_ckyc_rules", lambda rows, warnings_block: {})
    KycRecord.objects.filter(pk=approved[0].pk).update(gender="X", frozen_payload="", frozen_checked="")
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    refused = KycRecord.objects.get(pk=approved[0].pk)
    assert refused.status == Status.REJECTED
    assert "gender" in refused.upload_message
    sent = [r["kyc_ref_no"] for r in kwikid.stats()["last_request"]["body"]["records"]]
    assert refused.kyc_ref_no not in sent
    assert len(sent) == 2


def test_frozen_payload_the_schema_would_refuse_never_leaves_and_goes_back_to_its_maker(
    approved: list[KycRecord], kwikid: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same with the payload frozen at approval: it did not pass then, so it is checked before sending.
    monkeypatch.setattr(services, "_failing_ckyc_rules", lambda rows, warnings_block: {})
    approved_as(approved[0].pk, gender="X")
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    refused = KycRecord.objects.get(pk=approved[0].pk)
    assert refused.status == Status.REJECTED
    assert "gender" in refused.upload_message
    sent = [r["kyc_ref_no"] for r in kwikid.stats()["last_request"]["body"]["records"]]
    assert refused.kyc_ref_no not in sent and len(sent) == 2


def test_batch_with_no_valid_record_is_rejected_without_a_request(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    for record in approved:
        approved_as(record.pk, gender="X")
    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.REJECTED
    assert kwikid.stats()["requests"] == 0


def test_body_above_the_byte_limit_is_split_and_everything_is_sent_once(
    approved: list[KycRecord], kwikid: StandIn, no_queue: Doorbell, django_capture_on_commit_callbacks: Any
) -> None:
    Institution.objects.update(max_request_bytes=3000)  # about two records' worth
    batch_id = services.batch_assemble()[0]
    with django_capture_on_commit_callbacks(execute=True):
        assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    first_body = kwikid.stats()["last_request"]["body"]
    assert len(json.dumps(first_body, separators=(",", ":")).encode()) <= 3000
    new_ids = [b for b, _ in no_queue.rung if b != batch_id]
    assert new_ids, "the rest was not moved to a batch of its own"
    for new_id in new_ids:
        services.batch_send(batch_id=new_id)
    first = UploadBatch.objects.get(pk=batch_id)
    assert first.record_count == BatchItem.objects.filter(batch=first).count() < 3
    assert kwikid.stats()["accepted_records"] == 3
    assert kwikid.stats()["duplicates"] == 0


def test_progress_counts_todays_records_by_outcome(
    approved: list[KycRecord], kwikid: StandIn, alice: User, client: Any
) -> None:
    from tests.conftest import otp_login

    batch_ids = services.batch_assemble()
    services.batch_send(batch_id=batch_ids[0])
    otp_login(client, alice)
    data = client.get("/batches/progress.json").json()
    assert data == {"total": 5, "settled": 3, "pending": 2, "unknown": 0, "sending_batches": 0}


def test_assembled_items_follow_the_approval_order_with_their_references(
    approved: list[KycRecord],
) -> None:
    batch_ids = services.batch_assemble()
    items = list(
        BatchItem.objects.filter(batch_id__in=batch_ids)
        .order_by("batch_id", "position")
        .values_list("batch_id", "position", "record_id", "outcome")
    )
    assert [record_id for _, _, record_id, _ in items] == [r.pk for r in approved]
    assert [(b, p) for b, p, _, _ in items] == [
        (batch_ids[0], 0), (batch_ids[0], 1), (batch_ids[0], 2), (batch_ids[1], 0), (batch_ids[1], 1)
    ]  # fmt: skip
    assert {outcome for *_, outcome in items} == {BatchItem.Outcome.PENDING}
    first = UploadBatch.objects.get(pk=batch_ids[0])
    assert first.request_summary["kyc_ref_nos"] == [r.kyc_ref_no for r in approved[:3]]
    assert first.record_count == 3


def test_listing_the_branches_to_assemble_reads_branches_not_records(approved: list[KycRecord]) -> None:
    # Every bounded run lists the branches with work: a DISTINCT over the approved records would read
    # each of a million waiting records on every run.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        services.batch_assemble()
    listing = [q["sql"] for q in queries if q["sql"].startswith('SELECT "institutions_branch"')]
    assert len(listing) == 1
    assert "EXISTS" in listing[0] and "DISTINCT" not in listing[0]


class AssembleBell:
    """Counts the assembly runs a run queues after itself."""

    def __init__(self) -> None:
        self.rung = 0

    def __call__(self) -> None:
        self.rung += 1


@pytest.fixture
def assemble_bell(monkeypatch: pytest.MonkeyPatch) -> AssembleBell:
    bell = AssembleBell()
    monkeypatch.setattr(services, "_enqueue_assemble", bell)
    return bell


def test_a_bounded_run_makes_that_many_batches_and_queues_the_next_half_way(
    alice: User,
    bob: User,
    branch_a: Branch,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 23)]  # eight batches of at most 3
    queue: list[str] = []  # what reaches the broker, in order
    monkeypatch.setattr(services, "_enqueue_send", lambda batch_id, countdown: queue.append("send"))
    monkeypatch.setattr(services, "_enqueue_assemble", lambda: queue.append("next run"))
    runs = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            runs.append(services.batch_assemble(limit=4))
    assert [len(run) for run in runs] == [4, 4, 0]
    # Each full run queues the next after its second batch: a free worker starts it while this one goes
    # on, and one worker alone sends two batches before it assembles again. The empty run queues none.
    assert queue == ["send", "send", "next run", "send", "send"] * 2
    assert set(statuses(records)) == {Status.BATCHED}
    assert BatchItem.objects.count() == 22


def test_a_run_that_empties_the_queue_before_half_its_batches_queues_no_other(
    approved: list[KycRecord], assemble_bell: AssembleBell, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert len(services.batch_assemble(limit=6)) == 2
    assert assemble_bell.rung == 0


def test_branches_take_turns_the_longest_waiting_first(
    alice: User, bob: User, branch_a: Branch, branch_b: Branch, mallory: User, dave: User
) -> None:
    # Branch A has a backlog of four batches; branch B one record, approved before any of A's.
    earliest = approved_record(mallory, dave, branch_b, 1)
    backlog = [approved_record(alice, bob, branch_a, n) for n in range(1, 13)]
    KycRecord.objects.filter(pk=earliest.pk).update(reviewed_at=timezone.now() - timedelta(days=2))
    first = UploadBatch.objects.get(pk__in=services.batch_assemble(limit=1))
    assert first.branch == branch_b  # waited longest, though A's backlog is larger
    # A bounded run gives every branch with work a batch before any branch a second one.
    approved_record(mallory, dave, branch_b, 2)
    KycRecord.objects.filter(pk__in=[r.pk for r in backlog]).update(
        reviewed_at=timezone.now() - timedelta(days=1)
    )
    turns = [UploadBatch.objects.get(pk=pk).branch.code for pk in services.batch_assemble(limit=3)]
    assert turns == ["BRA", "BRB", "BRA"]


def test_the_task_and_the_sweep_assemble_a_bounded_run(
    alice: User,
    bob: User,
    branch_a: Branch,
    settings: Any,
    assemble_bell: AssembleBell,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.UPLOAD_ASSEMBLE_BATCHES_PER_RUN = 1
    for n in range(1, 8):  # three batches of at most 3
        approved_record(alice, bob, branch_a, n)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.batch_assemble() == 1
        assert services.uploads_sweep()["assembled"] == 1
    assert assemble_bell.rung == 2
    assert UploadBatch.objects.count() == 2


def test_records_are_checked_against_todays_code_lists_before_they_leave(
    approved: list[KycRecord], kwikid: StandIn, erin: User
) -> None:
    # Approved with title MR; then an administrator retires MR. The record goes back, the rest are sent.
    from codelists import services as codelist_services
    from codelists.models import NameTitle

    approved_as(approved[0].pk, applicant_name_title="DR")
    doctor = NameTitle.objects.get(code="DR")
    doctor.is_active = False
    codelist_services.code_entry_save(actor=erin, entry=doctor)

    batch_id = services.batch_assemble()[0]
    assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    refused = KycRecord.objects.get(pk=approved[0].pk)
    assert refused.status == Status.REJECTED
    assert refused.upload_message.startswith("It no longer passes the CKYC rules: Title:")
    sent = [r["kyc_ref_no"] for r in kwikid.stats()["last_request"]["body"]["records"]]
    assert refused.kyc_ref_no not in sent and len(sent) == 2


def test_status_moves_find_their_records_by_primary_key_whatever_the_statistics_say(
    approved: list[KycRecord],
) -> None:
    # The statistics of a freshly loaded backlog (every record approved), then everything batched without
    # an ANALYZE since, as during a large upload: "batched" looks rare, and a status index looks cheapest.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    meta = KycRecord._meta
    copy_record(approved[0], 3000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {meta.db_table}")
        cursor.execute(f"UPDATE {meta.db_table} SET status = 'batched'")
    ids = [r.pk for r in approved[:3]]
    with CaptureQueriesContext(connection) as queries:
        record_moves.records_mark_uploaded(record_ids=ids, message="Accepted")
    # The move and its events are one statement: UPDATE ... RETURNING inside a WITH clause.
    move = next(q["sql"] for q in queries if "UPDATE" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + move)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "records_kycrecord_pkey" in plan, plan


def test_batch_items_leave_room_on_their_page_for_the_outcome_and_have_no_redundant_index(
    db: None,
) -> None:
    # Each item is written twice; the second write (its outcome) should touch no index (a HOT update),
    # which needs free space on the item's page, and no index should duplicate the unique constraints'.
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's storage settings")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'uploads_batchitem'")
        assert "fillfactor=50" in (cursor.fetchone()[0] or [])
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'uploads_batchitem' "
            "AND indexdef LIKE '%%(batch_id)'"
        )
        assert cursor.fetchall() == []


def test_records_have_no_index_on_who_submitted_or_reviewed_them(db: None) -> None:
    # Each status change on the upload path writes an entry in every index of the record table; these two
    # served no query (users are deactivated, never deleted).
    from django.db import connection

    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, KycRecord._meta.db_table)
    single = {tuple(c["columns"]) for c in indexes.values() if c["index"] and not c["unique"]}
    assert ("submitted_by_id",) not in single and ("reviewed_by_id",) not in single


def test_a_first_send_reads_nothing_it_already_knows(approved: list[KycRecord], kwikid: StandIn) -> None:
    # Per batch: the code book's stamp comes with the claim, a first claim has no unanswered attempt to
    # look for, and the accepted records are the ones sent (not read back). Each is a statement per batch.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    batch_id = services.batch_assemble()[0]
    with CaptureQueriesContext(connection) as queries:
        assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    stamp_reads = [sql for sql in statements if "codelists_codebookstamp" in sql]
    assert len(stamp_reads) == 1 and "uploads_uploadbatch" in stamp_reads[0]
    assert not [sql for sql in statements if sql.startswith("SELECT") and '"uploads_uploadattempt"' in sql]
    item_reads = [sql for sql in statements if sql.startswith("SELECT") and "uploads_batchitem" in sql]
    assert len(item_reads) == 1, item_reads
    assert len(statements) <= 10, "\n".join(statements)
    assert BatchItem.objects.filter(batch_id=batch_id).values_list("outcome", flat=True).distinct().get() == (
        BatchItem.Outcome.ACCEPTED
    )
    assert set(statuses(approved[:3])) == {Status.UPLOADED}


@pytest.mark.django_db(transaction=True)
def test_only_the_batch_and_its_claim_commit_without_waiting_for_the_disk(
    approved: list[KycRecord], kwikid: StandIn
) -> None:
    """A database crash may undo the assembly and the send's claim (both are redone from the rows before
    them), never the attempt committed before the POST nor KwikID's answer: those commit normally, and the
    attempt's commit makes the two before it durable first."""
    seen: list[tuple[str, str]] = []

    def setting_before(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        row = connection.connection.execute("SHOW synchronous_commit").fetchone()
        seen.append((sql, row[0]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(setting_before):
        outcomes = send_all()
    assert {outcome.status for outcome in outcomes} == {BatchStatus.ACCEPTED}

    def settings_of(*fragments: str) -> set[str]:
        found = {setting for sql, setting in seen if all(f in sql for f in fragments)}
        assert found, fragments
        return found

    # The move to batched sets the status alone; the move to uploaded also the time and KwikID's message.
    assert settings_of('UPDATE "records_kycrecord" SET "status" = %s, "updated_at" = %s WHERE') == {"off"}
    assert settings_of('INSERT INTO "uploads_uploadbatch"') == {"off"}
    assert settings_of("INSERT INTO", "uploads_batchitem") == {"off"}
    assert settings_of('UPDATE "uploads_uploadbatch"', "lease_expires_at", "attempt_count") == {"off"}
    assert settings_of('INSERT INTO "uploads_uploadattempt"') == {"on"}
    assert settings_of('UPDATE "records_kycrecord"', '"uploaded_at" = %s WHERE') == {"on"}
    assert settings_of('UPDATE "uploads_uploadbatch" SET "status" = %s, "lease_expires_at" = NULL') == {"on"}
