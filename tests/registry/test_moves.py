"""records.moves.records_mark_registered: one uploaded record to registered (or registered before
upload), with its audit event, the KIN and its keyed hash, checked against ALLOWED_TRANSITIONS."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from ckycportal.crypto import keyed_hash
from institutions.models import Branch, User
from records import moves as record_moves
from records.models import KycRecord, RecordEvent, Status
from tests.conftest import approved_record

from .conftest import KIN, pan_for, uploaded_record

pytestmark = pytest.mark.django_db


def mark(record: KycRecord, kyc_date: date | None, kin: str = KIN) -> str | None:
    return record_moves.records_mark_registered(
        record_id=record.pk, kin=kin, registry_kyc_date=kyc_date, note="Found by the scheduled check."
    )


def test_the_upload_day_itself_is_registered_and_the_day_before_is_not(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    day = timezone.localdate(record.uploaded_at)
    assert record_moves.registration_status(uploaded_at=record.uploaded_at, registry_kyc_date=day) == (
        Status.REGISTERED
    )
    before = day - timedelta(days=1)
    assert record_moves.registration_status(uploaded_at=record.uploaded_at, registry_kyc_date=before) == (
        Status.PREEXISTING
    )


def test_the_move_writes_the_kin_its_hash_and_one_event(alice: User, bob: User, branch_a: Branch) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    assert mark(record, date(2020, 1, 2), kin="1001 2345 678901") == Status.PREEXISTING
    record.refresh_from_db()
    assert record.status == Status.PREEXISTING
    assert (record.ckyc_number, record.ckyc_number_hash) == (KIN, keyed_hash(KIN))
    assert record.registry_kyc_date == date(2020, 1, 2) and record.registered_at is not None
    assert record.registration_note == "Found by the scheduled check."
    (event,) = record.events.filter(to_status=Status.PREEXISTING)
    assert event.action == RecordEvent.Action.PREEXISTING and event.reason == "Found by the scheduled check."


def test_a_record_no_longer_uploaded_is_left_alone(alice: User, bob: User, branch_a: Branch) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    assert mark(record, timezone.localdate()) == Status.REGISTERED
    assert mark(record, timezone.localdate()) is None  # already registered: nothing more written
    assert record.events.filter(action=RecordEvent.Action.REGISTERED).count() == 1
    approved = approved_record(alice, bob, branch_a, 2, pan=pan_for(2))
    assert mark(approved, timezone.localdate()) is None
    assert KycRecord.objects.get(pk=approved.pk).status == Status.APPROVED


@pytest.mark.parametrize("kin", ["1234", "1001234567890A", ""])
def test_a_kin_is_fourteen_digits(kin: str, alice: User, bob: User, branch_a: Branch) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    with pytest.raises(ValueError, match="14 digits"):
        mark(record, None, kin=kin)
    assert KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED
