"""Records already stored are checked again, under today's rules, before their batch leaves: one that breaks a
rule that is an error now goes back to its maker with the reason (and a notification), and is not sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from codelists.models import CodeBookStamp
from institutions.models import Branch, User
from kwikid_standin.server import StandIn
from records import services as record_services
from records.models import KycRecord, RecordEvent, Status
from records.validation import RULES_VERSION
from reports import services as report_services
from reports.models import Notification
from tests.conftest import approved_record
from tests.records.factories import valid_record
from tests.uploads.conftest import approved_as
from uploads import services
from uploads.models import BatchItem, BatchStatus

pytestmark = pytest.mark.django_db

DECLARED = valid_record()["kyc_declaration_date"]


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_enqueue_send", lambda batch_id, countdown: None)
    monkeypatch.setattr(services, "_enqueue_assemble", lambda: None)


@pytest.fixture
def two_approved(alice: User, bob: User, branch_a: Branch) -> list[KycRecord]:
    return [approved_record(alice, bob, branch_a, n, mobile_number=f"987654321{n}") for n in (1, 2)]


def send_all() -> None:
    for batch_id in services.batch_assemble():
        assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED


def sent_refs(kwikid: StandIn) -> list[str]:
    return [r["kyc_ref_no"] for r in kwikid.stats()["last_request"]["body"]["records"]]


@pytest.mark.parametrize(
    ("changes", "label", "rule"),
    [
        ({"mobile_number": "5876543210"}, "Mobile number", "must start with 6, 7, 8 or 9"),
        (
            {"kyc_verification_date": DECLARED - timedelta(days=1)},
            "Verification date",
            "cannot be before the declaration date",
        ),
        ({"kyc_type": "05"}, "KYC type", "Minor is for applicants under 18"),
        ({"poa_document_number": "KL1234567"}, "Proof of address document number", "Passport number must"),
    ],
    ids=["mobile starting 5", "verified before declared", "adult on the minor type", "passport format"],
)
def test_a_stored_record_breaking_a_rule_that_is_now_an_error_goes_back_to_its_maker_unsent(
    two_approved: list[KycRecord],
    alice: User,
    kwikid: StandIn,
    changes: dict[str, Any],
    label: str,
    rule: str,
) -> None:
    # Approved while the rule was a warning (the institution's warnings did not block): as approval stored it.
    stale, good = two_approved
    approved_as(stale.pk, **changes)

    send_all()

    assert sent_refs(kwikid) == [good.kyc_ref_no]
    back = KycRecord.objects.get(pk=stale.pk)
    assert back.status == Status.REJECTED
    assert back.upload_message.startswith(f"{services.RULES_REFUSAL}{label}: ")
    assert rule in back.upload_message
    event = RecordEvent.objects.get(record=back, action=RecordEvent.Action.REJECTED)
    assert event.reason == back.upload_message
    item = BatchItem.objects.get(record=back)
    assert (item.outcome, item.message) == (BatchItem.Outcome.REJECTED, back.upload_message)
    assert KycRecord.objects.get(pk=good.pk).status == Status.UPLOADED


def test_the_maker_is_told_the_record_was_sent_back_before_upload_with_the_reason(
    two_approved: list[KycRecord], alice: User, kwikid: StandIn
) -> None:
    stale = two_approved[0]
    approved_as(stale.pk, mobile_number="5876543210")
    send_all()

    report_services.notifications_derive()

    note = Notification.objects.get(record_id=stale.pk)
    assert note.recipient == alice
    assert note.kind == Notification.Kind.REJECTED
    assert note.title == f"Record {stale.kyc_ref_no} was sent back before upload"
    assert "Mobile number: An Indian mobile number (ISD code 91) must start with 6, 7, 8 or 9" in note.body
    assert "5876543210" not in note.body


@pytest.mark.parametrize("older", ["{token}/{today}", "{token}/r{previous}/{today}"])
def test_a_payload_frozen_as_passed_under_older_rules_is_checked_again_today(
    two_approved: list[KycRecord], kwikid: StandIn, older: str
) -> None:
    # Frozen and stamped as passing, today and with today's code lists, but under an older rule set: the
    # stamp differs, so the worker checks the frozen payload again under the current rules.
    stale = two_approved[0]
    approved_as(stale.pk, mobile_number="5876543210")
    token = CodeBookStamp.objects.values_list("token", flat=True).get()
    today = timezone.localdate().isoformat()
    stamp = older.format(token=token, today=today, previous=RULES_VERSION - 1)
    KycRecord.objects.filter(pk=stale.pk).update(frozen_checked=stamp)

    send_all()

    assert KycRecord.objects.get(pk=stale.pk).status == Status.REJECTED
    assert stale.kyc_ref_no not in sent_refs(kwikid)


def test_the_stamp_names_the_rules_version(two_approved: list[KycRecord]) -> None:
    today = timezone.localdate()
    stamp = record_services.check_stamp(today)
    assert stamp.endswith(f"/r{RULES_VERSION}/{today.isoformat()}")
    assert KycRecord.objects.get(pk=two_approved[0].pk).frozen_checked == stamp
