"""The retention purge (uploads.retention, `manage.py purge_expired_records`): a record past retention loses
its personal data and keeps its history, as a tombstone. The database is read in plain SQL, as a dump
shows it."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from institutions.models import AuditEvent, Branch, Role, User
from records import services as record_services
from records.models import KycRecord, RecordEvent, RecordNameToken, Status
from tests.conftest import make_user, new_record, otp_login
from tests.records.factories import valid_record
from uploads import retention

pytestmark = pytest.mark.django_db

TODAY = date(2026, 12, 2)
NOTE = "Purged on 2026-12-02, under rule PMLA 5-year retention (relationship closed 2019-01-01)."
CLEAR = ("ABCPE1234F", "RAVI", "SURESH", "Marine Drive", "9876543210", "9123456780", "1985-04-12")
MASKED = ("XXXXXX234F", "XXXXXX3210", "XXXXXX6780", "R•••")


def raw(table: str, where: str = "", *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} {where} ORDER BY id", params)
        return cursor.fetchall()


@pytest.fixture
def records(alice: User, bob: User, branch_a: Branch) -> dict[str, KycRecord]:
    """Three records: one closed past retention (with an edit and a reason quoting personal data), one closed
    recently, one open."""
    old = new_record(alice, branch_a, 1)
    record_services.record_update(
        actor=alice,
        record=old,
        data=valid_record() | {"kyc_ref_no": old.kyc_ref_no, "mobile_number": "9123456780"},
    )
    old = record_services.record_submit(actor=alice, record=old)
    record_services.record_return(
        actor=bob, record=old, reason="12 Marine Drive is not the address on the PAN"
    )
    recent = new_record(alice, branch_a, 2)
    open_ = new_record(alice, branch_a, 3)
    KycRecord.objects.filter(pk=old.pk).update(relationship_closed_on=date(2019, 1, 1))
    KycRecord.objects.filter(pk=recent.pk).update(relationship_closed_on=date(2024, 1, 1))
    return {"old": old, "recent": recent, "open": open_}


def purge(erin: User, *, apply: bool = True) -> retention.PurgeResult:
    return retention.records_purge_expired(actor=erin, apply=apply, today=TODAY)


def test_dry_run_changes_nothing_and_is_audited(records: dict[str, KycRecord], erin: User) -> None:
    before = [raw(t) for t in ("records_kycrecord", "records_recordevent", "records_recordnametoken")]
    out = io.StringIO()
    call_command("purge_expired_records", "--as", "erin", stdout=out)
    assert "would purge REF-BRA-000001" in out.getvalue()
    assert [raw(t) for t in ("records_kycrecord", "records_recordevent", "records_recordnametoken")] == before
    assert AuditEvent.objects.get(action="records_purge_dry_run").detail["count"] == 1


def test_purge_erases_the_records_personal_data_and_keeps_the_record(
    records: dict[str, KycRecord], erin: User
) -> None:
    untouched = raw("records_kycrecord", "WHERE id <> %s", records["old"].pk)
    result = purge(erin)

    assert result.kyc_ref_nos == ["REF-BRA-000001"]
    assert KycRecord.objects.count() == 3
    assert raw("records_kycrecord", "WHERE id <> %s", records["old"].pk) == untouched
    row = repr(raw("records_kycrecord", "WHERE id = %s", records["old"].pk))
    assert not [text for text in CLEAR if text in row]
    old = KycRecord.objects.get(pk=records["old"].pk)
    assert (old.pan, old.pan_hash, old.applicant_first_name, old.dob, old.mobile_number) == (
        "",
        "",
        "",
        None,
        "",
    )
    assert old.return_reason == ""
    assert old.purged_at is not None and old.purge_note == NOTE
    assert not RecordNameToken.objects.filter(record=old).exists()
    event = AuditEvent.objects.get(action="records_purged")
    assert event.actor == erin
    assert event.detail["kyc_ref_nos"] == ["REF-BRA-000001"]
    assert event.detail["rule"] == "PMLA 5-year retention"


def test_purge_keeps_the_history_as_a_tombstone(records: dict[str, KycRecord], erin: User) -> None:
    old = records["old"]
    actions = list(RecordEvent.objects.filter(record=old).values_list("action", "actor", "created_at"))
    others = raw("records_recordevent", "WHERE record_id <> %s", old.pk)

    purge(erin)

    events = RecordEvent.objects.filter(record=old)
    assert list(events.values_list("action", "actor", "created_at")) == actions
    assert {event.reason for event in events} == {NOTE}
    assert {event.changed_values for event in events} == {""}
    edit = events.get(action=RecordEvent.Action.EDITED)
    assert edit.changed_fields == ["mobile_number"]
    stored = repr(raw("records_recordevent", "WHERE record_id = %s", old.pk))
    assert not [text for text in CLEAR + MASKED if text in stored]
    assert raw("records_recordevent", "WHERE record_id <> %s", old.pk) == others


def test_record_page_and_audit_log_show_the_tombstone_not_the_personal_data(
    records: dict[str, KycRecord], erin: User, alice: User, institution: Any
) -> None:
    purge(erin)
    maker = Client()
    maker.force_login(alice)
    auditor = Client()
    otp_login(auditor, make_user("audrey", Role.AUDITOR))

    detail = maker.get(reverse("records:detail", args=[records["old"].pk])).content.decode()
    log = auditor.get(reverse("reports:audit_log")).content.decode()

    for html in (detail, log):
        assert NOTE in html
        assert not [text for text in CLEAR + MASKED if text in html]


def test_purging_twice_is_harmless(records: dict[str, KycRecord], erin: User) -> None:
    purge(erin)
    after_first = [raw(t) for t in ("records_kycrecord", "records_recordevent")]

    assert purge(erin).kyc_ref_nos == []

    assert [raw(t) for t in ("records_kycrecord", "records_recordevent")] == after_first
    assert AuditEvent.objects.filter(action="records_purged").count() == 2


def test_a_purged_record_cannot_be_edited_or_moved(
    records: dict[str, KycRecord], erin: User, alice: User, bob: User
) -> None:
    purge(erin)
    old = KycRecord.objects.get(pk=records["old"].pk)
    assert not old.is_editable
    with pytest.raises(record_services.TransitionNotAllowed, match="purged"):
        record_services.record_update(
            actor=alice, record=old, data=valid_record() | {"kyc_ref_no": old.kyc_ref_no}
        )
    KycRecord.objects.filter(pk=old.pk).update(status=Status.SUBMITTED)  # as if purged while waiting
    with pytest.raises(record_services.TransitionNotAllowed, match="purged"):
        record_services.record_return(actor=bob, record=KycRecord.objects.get(pk=old.pk), reason="Incomplete")


def test_only_an_admin_may_purge(records: dict[str, KycRecord], alice: User) -> None:
    with pytest.raises(CommandError, match="only admins"):
        call_command("purge_expired_records", "--as", "alice", "--apply", stdout=io.StringIO())
    assert not KycRecord.objects.filter(purged_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action__startswith="records_purge").exists()
