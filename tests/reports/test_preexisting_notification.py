"""A record found registered before its upload notifies its maker(s) and its checker, once each."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction
from django.utils import timezone

from institutions.models import Branch, User
from records import moves as record_moves
from records.models import Status
from reports import services
from reports.models import Notification
from tests.conftest import approved_record

pytestmark = pytest.mark.django_db

KIN = "10012345678901"


def registered(record_id: int, kyc_date: date) -> str | None:
    with transaction.atomic():
        record_moves.records_mark_batched(record_ids=[record_id])
        record_moves.records_mark_uploaded(record_ids=[record_id], message="Accepted for processing")
        return record_moves.records_mark_registered(
            record_id=record_id,
            kin=KIN,
            registry_kyc_date=kyc_date,
            note=f"Found by the scheduled check; the registry's KYC date is {kyc_date:%d %b %Y}.",
        )


def test_registered_before_upload_notifies_the_maker_and_the_checker_once(
    alice: User, bob: User, branch_a: Branch
) -> None:
    alice.email = "alice@example.com"
    alice.save()
    record = approved_record(alice, bob, branch_a)
    assert registered(record.pk, date(2019, 4, 1)) == Status.PREEXISTING
    assert services.notifications_derive() == 2
    assert services.notifications_derive() == 0
    notes = {n.recipient.username: n for n in Notification.objects.select_related("recipient")}
    assert set(notes) == {"alice", "bob"}
    for note in notes.values():
        assert note.kind == Notification.Kind.PREEXISTING and note.record_id == record.pk
        assert record.kyc_ref_no in note.title and "before its upload" in note.title
        assert "01 Apr 2019" in note.body and "duplicate" in note.body
        assert KIN not in note.title + note.body
    assert notes["alice"].email_status == Notification.Email.PENDING
    assert notes["bob"].email_status == Notification.Email.NONE  # no address: the portal's bell only


def test_a_record_registered_after_its_upload_notifies_nobody(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a)
    assert registered(record.pk, timezone.localdate()) == Status.REGISTERED
    assert services.notifications_derive() == 0


def test_an_inactive_checker_is_not_notified(alice: User, bob: User, branch_a: Branch) -> None:
    record = approved_record(alice, bob, branch_a)
    bob.is_active = False
    bob.save()
    registered(record.pk, date(2019, 4, 1))
    services.notifications_derive()
    assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["alice"]
