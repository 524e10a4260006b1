"""The upload path's set-based transitions (records.moves): one conditional UPDATE …
RETURNING and one INSERT … SELECT of audit events, exactly one event per record that moved."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from institutions.models import Branch, User
from records import moves
from records.models import KycRecord, RecordEvent, Status
from tests.conftest import approved_record, new_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(alice: User, bob: User, branch_a: Branch) -> list[KycRecord]:
    return [approved_record(alice, bob, branch_a, n) for n in range(1, 5)]


def events(action: str) -> list[tuple[int, str, str, str, int | None]]:
    return sorted(
        RecordEvent.objects.filter(action=action).values_list(
            "record_id", "from_status", "to_status", "reason", "actor_id"
        )
    )


def test_only_records_in_the_expected_status_move_each_with_one_event(
    approved: list[KycRecord], alice: User, branch_a: Branch
) -> None:
    draft = new_record(alice, branch_a, 99)
    ids = [r.pk for r in approved]
    moved = moves.records_mark_batched(record_ids=[*ids, draft.pk, ids[0]])  # a repeat moves once
    assert sorted(moved) == ids
    assert set(KycRecord.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.BATCHED}
    assert KycRecord.objects.get(pk=draft.pk).status == Status.DRAFT
    assert events(RecordEvent.Action.BATCHED) == [(pk, "approved", "batched", "", None) for pk in ids]
    # Nothing moves twice: a second call finds them batched already.
    assert moves.records_mark_batched(record_ids=ids) == []
    assert RecordEvent.objects.filter(action=RecordEvent.Action.BATCHED).count() == len(ids)


def test_uploaded_records_get_the_message_time_and_actor(approved: list[KycRecord], erin: User) -> None:
    ids = [r.pk for r in approved]
    moves.records_mark_batched(record_ids=ids)
    before = KycRecord.objects.get(pk=ids[0]).updated_at
    moved = moves.records_mark_uploaded(record_ids=ids[:2], message="Accepted: 2 records", actor=erin)
    assert sorted(moved) == ids[:2]
    for record in KycRecord.objects.filter(pk__in=ids[:2]):
        assert (record.status, record.upload_message) == (Status.UPLOADED, "Accepted: 2 records")
        assert record.uploaded_at is not None and record.updated_at > before
    assert events(RecordEvent.Action.UPLOADED) == [
        (pk, "batched", "uploaded", "Accepted: 2 records", erin.pk) for pk in ids[:2]
    ]
    event = RecordEvent.objects.filter(action=RecordEvent.Action.UPLOADED).first()
    assert event is not None and event.changed_fields == [] and event.created_at is not None


def test_each_rejected_record_keeps_its_own_reason(approved: list[KycRecord]) -> None:
    ids = [r.pk for r in approved]
    moves.records_mark_batched(record_ids=ids)
    reasons = {ids[0]: "pan: PAN not found", ids[1]: "dob: in the future", ids[2]: "pan: PAN not found"}
    assert sorted(moves.records_mark_rejected(reasons=reasons)) == sorted(reasons)
    for pk, reason in reasons.items():
        assert KycRecord.objects.values_list("status", "upload_message").get(pk=pk) == (
            Status.REJECTED,
            reason,
        )
    assert events(RecordEvent.Action.REJECTED) == sorted(
        (pk, "batched", "rejected", reason, None) for pk, reason in reasons.items()
    )
    assert KycRecord.objects.get(pk=ids[3]).status == Status.BATCHED


def test_requeue_puts_batched_records_back_in_the_queue(approved: list[KycRecord]) -> None:
    ids = [r.pk for r in approved]
    moves.records_mark_batched(record_ids=ids)
    assert sorted(moves.records_requeue(record_ids=ids, reason="Batch 7 was cancelled")) == ids
    assert set(KycRecord.objects.values_list("status", flat=True)) == {Status.APPROVED}
    assert {e[3] for e in events(RecordEvent.Action.REQUEUED)} == {"Batch 7 was cancelled"}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_moves_of_the_same_records_move_each_once(
    alice: User, bob: User, branch_a: Branch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    ids = [approved_record(alice, bob, branch_a, n).pk for n in range(1, 4)]
    first_moved = threading.Event()
    results: dict[str, list[int]] = {}

    def second() -> None:
        try:
            first_moved.wait(10)
            with transaction.atomic():  # blocks on the first transaction's row locks, then re-checks
                results["second"] = moves.records_mark_batched(record_ids=ids)
        finally:
            connections.close_all()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        results["first"] = moves.records_mark_batched(record_ids=ids)
        first_moved.set()
        thread.join(0.5)  # the second is waiting for our locks
        assert thread.is_alive()
    thread.join(10)
    assert sorted(results["first"]) == ids and results["second"] == []
    assert RecordEvent.objects.filter(action=RecordEvent.Action.BATCHED).count() == len(ids)
