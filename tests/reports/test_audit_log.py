"""The audit-log page: one newest-first view over record and configuration events, keyset-paged with a
constant number of queries, filtered, exported as CSV without formula injection or PII."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions import services as inst_services
from institutions.models import AuditEvent, Branch, Role, User
from records import services as record_services
from records.models import RecordEvent
from reports import audit
from tests.conftest import make_user, new_record, otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(institution: Any) -> User:
    return make_user("audrey", Role.AUDITOR)


def client_for(user: User) -> Client:
    client = Client()
    otp_login(client, user)
    return client


@pytest.fixture
def history(alice: User, bob: User, erin: User, mallory: User, branch_a: Branch, branch_b: Branch) -> Any:
    a = record_services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    record_services.record_return(actor=bob, record=a, reason="Address incomplete")
    record_services.record_submit(actor=mallory, record=new_record(mallory, branch_b, 2))
    inst_services.branch_update(actor=erin, branch=branch_a, name="Branch A Main")
    return a


def test_merged_log_is_newest_first_across_both_tables(history: Any, auditor: User) -> None:
    rows, last = audit.audit_page(auditor, audit.AuditFilters())
    assert last is None
    keys = [row.key for row in rows]
    assert keys == sorted(keys, reverse=True)
    assert {row.source for row in rows} == {audit.RECORD, audit.CONFIG}
    assert rows[0].action == "branch_updated"
    assert rows[0].changes == ["Name: Branch A → Branch A Main"]


def test_keyset_pages_cover_everything_once(history: Any, auditor: User) -> None:
    everything, _ = audit.audit_page(auditor, audit.AuditFilters(), size=1000)
    seen: list[tuple[Any, ...]] = []
    after = None
    while True:
        rows, last = audit.audit_page(auditor, audit.AuditFilters(), after=after, size=2)
        seen += [row.key for row in rows]
        if last is None:
            break
        after = last.key
    assert seen == [row.key for row in everything]


def test_ties_on_the_same_instant_are_neither_lost_nor_repeated(
    auditor: User, alice: User, branch_a: Branch
) -> None:
    same = timezone.now() - timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=same):  # events are append-only: born tied
        new_record(alice, branch_a)
        for _ in range(3):
            AuditEvent.objects.create(action="branch_updated", object_type="Branch")
    total = RecordEvent.objects.count() + AuditEvent.objects.count()
    seen = []
    after = None
    while True:
        rows, last = audit.audit_page(auditor, audit.AuditFilters(), after=after, size=1)
        seen += [row.key for row in rows]
        if last is None:
            break
        after = last.key
    assert len(seen) == len(set(seen)) == total


def test_filters(history: Any, auditor: User, branch_b: Branch, bob: User) -> None:
    def actions(**kwargs: Any) -> set[str]:
        rows, _ = audit.audit_page(auditor, audit.AuditFilters(**kwargs))
        return {row.action for row in rows}

    assert actions(actor="bob") == {"returned"}
    assert actions(action="returned") == {"returned"}
    assert actions(action="branch_updated") == {"branch_updated"}
    assert actions(ref=history.kyc_ref_no.lower()) == {"created", "submitted", "returned"}
    assert actions(branch=branch_b) == {"created", "submitted"}
    assert actions(date_to=timezone.localdate() - timedelta(days=1)) == set()
    assert actions(actor="nobody-by-this-name") == set()


def test_page_takes_a_constant_number_of_queries(
    auditor: User, alice: User, branch_a: Branch, django_assert_max_num_queries: Any
) -> None:
    client = client_for(auditor)
    new_record(alice, branch_a, 1)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("reports:audit_log"))
    for n in range(2, 60):
        new_record(alice, branch_a, n)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("reports:audit_log"))
    assert response.context["next_cursor"]  # more than one page now
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("reports:audit_log"), {"after": response.context["next_cursor"]})
    log_queries = [
        q["sql"].upper()
        for q in few.captured_queries
        if "RECORDS_RECORDEVENT" in q["sql"].upper() or "INSTITUTIONS_AUDITEVENT" in q["sql"].upper()
    ]
    assert len(log_queries) == 2
    assert not any("COUNT(" in sql or "OFFSET" in sql for sql in log_queries)


def test_only_admins_and_auditors(history: Any, alice: User, bob: User) -> None:
    for user in (alice, bob):
        assert client_for(user).get(reverse("reports:audit_log")).status_code == 403
        assert client_for(user).get(reverse("reports:audit_export")).status_code == 403


def test_bad_filter_is_named(auditor: User) -> None:
    response = client_for(auditor).get(reverse("reports:audit_log"), {"date_from": "2026-13-45"})
    assert response.status_code == 400
    assert "date_from" in response.context["form"].errors


def test_csv_export_streams_every_row_masked_and_safe(
    history: Any, auditor: User, erin: User, alice: User
) -> None:
    inst_services.user_set_active(actor=erin, user=alice, active=False, reason="=cmd|' /C calc'!A0")
    response = client_for(auditor).get(reverse("reports:audit_export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["time", "source", "action"]
    assert len(rows) - 1 == RecordEvent.objects.count() + AuditEvent.objects.count()
    reasons = [row[9] for row in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in reasons
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    for pii in ("ABCPE1234F", "RAVI", "9876543210", "Marine Drive"):
        assert pii not in body


def test_csv_export_keeps_the_filters(history: Any, auditor: User) -> None:
    response = client_for(auditor).get(reverse("reports:audit_export"), {"action": "returned"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row[2] for row in rows[1:]] == ["Returned"]


def test_edit_diffs_show_masked_values(auditor: User, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = record_services.record_data(record)
    data["mobile_number"] = "9123456780"
    record_services.record_update(actor=alice, record=record, data=data)
    rows, _ = audit.audit_page(auditor, audit.AuditFilters(action="edited"))
    text = " ".join(rows[0].changes)
    assert "Mobile number:" in text and "9123456780" not in text and "6780" in text
    assert "mobile_number" not in text  # the form's words, not the API's field name


def test_statuses_roles_and_sizes_in_words(
    erin: User, auditor: User, alice: User, bob: User, branch_a: Branch
) -> None:
    record = record_services.record_submit(actor=alice, record=new_record(alice, branch_a))
    record_services.record_approve(actor=bob, record=record)
    rows, _ = audit.audit_page(auditor, audit.AuditFilters(action="approved"))
    assert (rows[0].from_status, rows[0].to_status) == ("Waiting for review", "Approved, waiting for upload")
    inst_services.user_create(
        actor=erin,
        username="newchecker",
        role=Role.CHECKER,
        branches=[branch_a],
        password="a-long-pass-phrase-2026",
        reason="New branch manager",
    )
    rows, _ = audit.audit_page(auditor, audit.AuditFilters(action="user_created"))
    assert any(c.startswith("Role: — → Checker") for c in rows[0].changes)
    assert ("code_entry_created", "Code entry created") in audit.audit_actions()
    assert ("import_uploaded", "Import file uploaded") in audit.audit_actions()


def test_about_column_names_things_in_words(erin: User, auditor: User, branch_a: Branch) -> None:
    AuditEvent.objects.create(
        actor=erin,
        action="code_entry_created",
        object_type="NameTitle",
        object_id="9",
        detail={"list": "name_titles", "code": "SHRI", "changes": {"label": [None, "Shri"]}},
    )
    AuditEvent.objects.create(
        actor=erin,
        action="records_purged",
        object_type="KycRecord",
        detail={"count": 1, "kyc_ref_nos": ["MUM/0001"]},
    )
    AuditEvent.objects.create(actor=erin, action="records_exported", object_type="KycRecord", detail={})
    AuditEvent.objects.create(actor=erin, action="batch_cancelled", object_type="UploadBatch", object_id="12")
    rows, _ = audit.audit_page(auditor, audit.AuditFilters())
    labels = {row.action: row.object_label for row in rows}
    assert labels["code_entry_created"] == "Name title SHRI"
    assert labels["records_purged"] == "Record MUM/0001"
    assert labels["records_exported"] == "Records"
    assert labels["batch_cancelled"] == "Batch 12"
    assert not any("list: " in change.lower() for row in rows for change in row.changes)


def test_creations_show_their_reason_in_the_log(erin: User, auditor: User, institution: Any) -> None:
    inst_services.branch_create(
        actor=erin, institution=institution, code="PUN01", name="Pune", reason="Circular 12/2026"
    )
    body = client_for(auditor).get(reverse("reports:audit_log")).content.decode()
    assert "Branch created" in body and "Circular 12/2026" in body and "Branch PUN01" in body


def test_configuration_changes_name_fields_in_words(erin: User, auditor: User, branch_a: Branch) -> None:
    inst_services.user_create(
        actor=erin,
        username="newmaker",
        role=Role.MAKER,
        branches=[branch_a],
        password="quartz-meadow-lantern-2291",
        first_name="Priya",
        reason="Joined",
    )
    AuditEvent.objects.create(
        actor=erin,
        action="institution_configured",
        object_type="Institution",
        detail={"changes": {"fi_code": ["OLD01", "NEW01"]}, "token_replaced": False},
    )
    rows, _ = audit.audit_page(auditor, audit.AuditFilters())
    changes = {row.action: row.changes for row in rows}
    assert "First name: — → Priya" in changes["user_created"]
    assert "Password set: yes" in changes["user_created"]
    assert changes["institution_configured"] == ["CERSAI FI code: OLD01 → NEW01", "KwikID token replaced: no"]


def test_cursor_round_trips_and_a_malformed_one_starts_at_the_top(history: Any, auditor: User) -> None:
    rows, _ = audit.audit_page(auditor, audit.AuditFilters(), size=1)
    assert audit.parse_cursor(rows[0].cursor) == rows[0].key
    for bad in ("", "nonsense", "2026-01-01T00:00:00+00:00~x~1", "not-a-time~r~1", "2026-01-01~r~one"):
        assert audit.parse_cursor(bad) is None


def test_export_rows_are_every_page_in_order(history: Any, auditor: User) -> None:
    everything, _ = audit.audit_page(auditor, audit.AuditFilters(), size=1000)
    exported = list(audit.audit_rows(auditor, audit.AuditFilters(), chunk=2))
    assert [row.key for row in exported] == [row.key for row in everything]
