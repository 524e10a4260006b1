"""The payload frozen at approval: what the checker approved is exactly what is sent to KwikID."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from institutions.models import Branch, User
from kwikid.payload import payload_to_record, record_to_payload
from kwikid_standin.server import StandIn
from records import services
from records.models import KycRecord, Status
from tests.conftest import approved_record, new_record
from uploads import services as upload_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_services, "_enqueue_send", lambda batch_id, countdown: None)
    monkeypatch.setattr(upload_services, "_enqueue_assemble", lambda: None)


def sent_records(kwikid: StandIn) -> list[dict[str, Any]]:
    return kwikid.stats()["last_request"]["body"]["records"]  # type: ignore[no-any-return]


def record_checks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The records the worker checks against the CKYC rules (none refused), as they are checked."""
    checked: list[dict[str, Any]] = []

    def check(rows: list[dict[str, Any]], warnings_block: bool) -> dict[int, str]:
        checked.extend(rows)
        return {}

    monkeypatch.setattr(upload_services, "_failing_ckyc_rules", check)
    return checked


def send_all() -> None:
    for batch_id in upload_services.batch_assemble():
        upload_services.batch_send(batch_id=batch_id)


def test_approval_freezes_the_payload_and_when_it_passed_every_check(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a)
    stored = KycRecord.objects.get(pk=record.pk)
    payload = record_to_payload(services.record_data(stored))
    assert stored.frozen_payload == json.dumps(payload, separators=(",", ":"))
    assert stored.frozen_checked == services.check_stamp(timezone.localdate())


def test_what_the_checker_approved_is_what_is_sent_even_if_the_row_changes_underneath(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn
) -> None:
    record = approved_record(alice, bob, branch_a)
    approved_payload = record_to_payload(services.record_data(record))
    # Not through the services (they refuse to edit an approved record): a direct write to the row.
    KycRecord.objects.filter(pk=record.pk).update(applicant_first_name="SOMEONE ELSE")
    send_all()
    assert sent_records(kwikid) == [approved_payload]
    assert KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED


def test_a_frozen_payload_checked_today_with_todays_code_lists_is_not_checked_again(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_record(alice, bob, branch_a)
    checked = record_checks(monkeypatch)
    send_all()
    assert checked == []
    assert kwikid.stats()["accepted_records"] == 1


def test_a_frozen_payload_is_checked_again_from_itself_once_the_day_has_turned(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = approved_record(alice, bob, branch_a)
    stamp = KycRecord.objects.get(pk=record.pk).frozen_checked
    KycRecord.objects.filter(pk=record.pk).update(frozen_checked=stamp.split("/")[0] + "/2000-01-01")
    KycRecord.objects.filter(pk=record.pk).update(applicant_first_name="NOT WHAT IS SENT")
    checked = record_checks(monkeypatch)
    send_all()
    assert [row["applicant_first_name"] for row in checked] == [record.applicant_first_name]
    assert kwikid.stats()["accepted_records"] == 1


def test_a_record_kwikid_rejects_loses_its_frozen_payload_and_is_frozen_anew_when_approved_again(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn
) -> None:
    record = approved_record(alice, bob, branch_a)
    kwikid.set_faults(
        fail_next=1,
        status=400,
        content_type="application/json",
        body='{"detail": {"records[0].pan": ["PAN does not match the name"]}, "message": "Refused"}',
    )
    send_all()
    rejected = KycRecord.objects.get(pk=record.pk)
    assert rejected.status == Status.REJECTED
    assert (rejected.frozen_payload, rejected.frozen_checked) == ("", "")

    services.record_update(actor=alice, record=rejected, data={"applicant_first_name": "PRIYA"})
    services.record_submit(actor=alice, record=rejected)
    again = services.record_approve(actor=bob, record=KycRecord.objects.get(pk=record.pk))
    assert json.loads(again.frozen_payload)["basic_details"]["applicant_first_name"] == "PRIYA"


def test_records_approved_before_payloads_were_frozen_are_sent_from_their_fields(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn
) -> None:
    record = approved_record(alice, bob, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(frozen_payload="", frozen_checked="")
    send_all()
    assert sent_records(kwikid) == [record_to_payload(services.record_data(record))]


def test_a_payload_gives_back_the_record_it_was_made_from(alice: User, branch_a: Branch) -> None:
    for n, overrides in enumerate(
        [{}, {"current_address_same_as_poa_address": "Y"}, {"mobile_number": ""}], start=1
    ):
        record = new_record(alice, branch_a, n, **overrides)
        data = services.record_data(record)
        assert payload_to_record(record_to_payload(data)) == data


def test_approval_locks_the_record_it_freezes_and_not_its_branch_or_institution(
    alice: User, bob: User, branch_a: Branch
) -> None:
    # Every approval of the institution would otherwise queue behind one row (and could deadlock with a
    # settings change that re-dates the institution's records).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    with CaptureQueriesContext(connection) as queries:
        services.record_approve(actor=bob, record=record)
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert locks and all(sql.endswith('FOR UPDATE OF "records_kycrecord"') for sql in locks), locks


def test_approval_checks_the_record_once_with_one_code_book(
    alice: User, bob: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    books: list[Any] = []
    validate = services.validate_record

    def counting(data: Any, **kwargs: Any) -> Any:
        books.append(kwargs["codes"])
        return validate(data, **kwargs)

    monkeypatch.setattr(services, "validate_record", counting)
    services.record_approve(actor=bob, record=record)
    assert len(books) == 1
    assert books[0] is not None
    assert KycRecord.objects.get(pk=record.pk).frozen_checked  # passed, and so frozen as checked
