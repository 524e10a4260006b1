"""Per-record results inside an upload's 200: the records KwikID marks as failed go back to their maker
with its reason, and only the others are accepted. The sending service against the stand-in over real
HTTP, then the same through a real Celery worker process."""

from __future__ import annotations

import subprocess

import pytest

from institutions.models import Branch, User
from kwikid_standin.server import RECORD_FAILURE_REASON, StandIn
from records.models import KycRecord, RecordEvent, Status
from tests.conftest import approved_record, wait_for
from uploads import services
from uploads.models import BatchItem, BatchStatus, UploadBatch


@pytest.fixture
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_enqueue_send", lambda batch_id, countdown: None)
    monkeypatch.setattr(services, "_enqueue_assemble", lambda: None)


def _outcomes(batch_id: int) -> dict[int, tuple[str, str]]:
    return {
        item.record_id: (item.outcome, item.message) for item in BatchItem.objects.filter(batch_id=batch_id)
    }


@pytest.mark.django_db
@pytest.mark.parametrize("shape", ["list", "index", "ref"])
def test_records_a_200_marks_as_failed_are_rejected_and_the_others_accepted(
    no_queue: None, kwikid: StandIn, alice: User, bob: User, branch_a: Branch, shape: str
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 4)]  # one batch of three
    failing = records[1]
    kwikid.set_faults(record_failures=[failing.kyc_ref_no], record_results_shape=shape)

    batch_id = services.batch_assemble()[0]
    outcome = services.batch_send(batch_id=batch_id)

    assert outcome.status == BatchStatus.ACCEPTED
    rejected = KycRecord.objects.get(pk=failing.pk)
    assert rejected.status == Status.REJECTED
    assert rejected.upload_message == RECORD_FAILURE_REASON
    event = RecordEvent.objects.get(record=rejected, action=RecordEvent.Action.REJECTED)
    assert event.reason == RECORD_FAILURE_REASON
    others = [records[0].pk, records[2].pk]
    assert set(KycRecord.objects.filter(pk__in=others).values_list("status", flat=True)) == {Status.UPLOADED}
    items = _outcomes(batch_id)
    assert items[failing.pk] == (BatchItem.Outcome.REJECTED, RECORD_FAILURE_REASON)
    assert {items[pk][0] for pk in others} == {BatchItem.Outcome.ACCEPTED}
    batch = UploadBatch.objects.get(pk=batch_id)
    assert batch.response_detail == {"failed_records": {failing.kyc_ref_no: RECORD_FAILURE_REASON}}
    assert kwikid.stats()["accepted_records"] == 2


@pytest.mark.django_db
def test_a_200_marking_every_record_failed_rejects_the_batch(
    no_queue: None, kwikid: StandIn, alice: User, bob: User, branch_a: Branch
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 3)]
    kwikid.set_faults(record_failures=[r.kyc_ref_no for r in records])

    batch_id = services.batch_assemble()[0]
    outcome = services.batch_send(batch_id=batch_id)

    assert outcome.status == BatchStatus.REJECTED
    assert UploadBatch.objects.get(pk=batch_id).status == BatchStatus.REJECTED
    statuses = set(KycRecord.objects.filter(pk__in=[r.pk for r in records]).values_list("status", flat=True))
    assert statuses == {Status.REJECTED}
    assert {outcome for outcome, _ in _outcomes(batch_id).values()} == {BatchItem.Outcome.REJECTED}


@pytest.mark.django_db
def test_a_plain_200_still_accepts_every_record(
    no_queue: None, kwikid: StandIn, alice: User, bob: User, branch_a: Branch
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 4)]
    kwikid.set_faults(record_failures=["A-REF-NOT-IN-THIS-BATCH"])

    batch_id = services.batch_assemble()[0]
    services.batch_send(batch_id=batch_id)

    statuses = set(KycRecord.objects.filter(pk__in=[r.pk for r in records]).values_list("status", flat=True))
    assert statuses == {Status.UPLOADED}
    assert UploadBatch.objects.get(pk=batch_id).response_detail is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_per_record_failures_in_a_200_through_a_real_worker(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 6)]  # two batches: 3 and 2
    failing = {records[0].kyc_ref_no, records[4].kyc_ref_no}
    kwikid.set_faults(record_failures=sorted(failing), record_results_shape="index")
    services.request_assembly()

    def settled() -> bool:
        return not KycRecord.objects.filter(
            pk__in=[r.pk for r in records], status__in=[Status.APPROVED, Status.BATCHED]
        ).exists()

    wait_for(settled, timeout=60)
    final = {
        ref: (status, message)
        for ref, status, message in KycRecord.objects.filter(pk__in=[r.pk for r in records]).values_list(
            "kyc_ref_no", "status", "upload_message"
        )
    }
    assert {ref for ref, (status, _) in final.items() if status == Status.REJECTED} == failing
    assert {final[ref][1] for ref in failing} == {RECORD_FAILURE_REASON}
    assert {status for ref, (status, _) in final.items() if ref not in failing} == {Status.UPLOADED}
    assert set(UploadBatch.objects.values_list("status", flat=True)) == {BatchStatus.ACCEPTED}
    items = BatchItem.objects.filter(record_id__in=[r.pk for r in records])
    assert sorted(items.values_list("outcome", flat=True)) == sorted(
        [BatchItem.Outcome.ACCEPTED] * 3 + [BatchItem.Outcome.REJECTED] * 2
    )
    stats = kwikid.stats()
    assert (stats["accepted_records"], stats["duplicates"]) == (3, 0)
    assert celery_worker_process.poll() is None
