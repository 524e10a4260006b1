"""The record page: problems pointing at their fields, the deadline, uploads with KwikID's answer, history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, Role, User
from records import services
from records.models import KycRecord, RecordEvent
from tests.conftest import make_user, new_record, otp_login
from uploads.models import BatchItem, UploadAttempt, UploadBatch

pytestmark = pytest.mark.django_db


def page(client: Client, record: KycRecord) -> str:
    return client.get(reverse("records:detail", args=[record.pk])).content.decode()


def test_problems_link_to_their_highlighted_field(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, gender="")
    client.force_login(alice)

    html = page(client, record)

    assert 'href="#f-gender"' in html
    assert 'id="f-gender"' in html
    row = html[html.index('id="f-gender"') :]
    assert "field-problem" in row[: row.index("</dd>")]


def test_overdue_record_says_so(client: Client, alice: User, branch_a: Branch) -> None:
    verified = timezone.localdate() - timedelta(days=15)
    record = new_record(alice, branch_a, kyc_verification_date=verified)
    client.force_login(alice)

    assert "Overdue since" in page(client, record)


def test_existing_kin_is_shown_masked_with_the_update_deadline(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, existing_ckyc_no="10012345678901")
    client.force_login(alice)

    html = page(client, record)

    assert "XXXXXXXXXX8901" in html and "10012345678901" not in html
    assert "update of an existing CKYC record" in html


def test_uploads_show_kwikids_word_and_the_last_attempt_but_not_the_response_body(
    client: Client, alice: User, bob: User, branch_a: Branch, institution: Institution
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    services.record_approve(actor=bob, record=record)
    batch = UploadBatch.objects.create(institution=institution, branch=branch_a, status="rejected")
    BatchItem.objects.create(
        batch=batch, record=record, position=0, outcome="rejected", message="records[0].pan: invalid"
    )
    UploadAttempt.objects.create(
        batch=batch,
        number=1,
        started_at=timezone.now(),
        status_code=400,
        response_body='{"detail": {"records[1].pan": "OTHER CUSTOMER"}}',
        error_class="KwikIDRejectedError",
    )
    client.force_login(alice)

    html = page(client, record)

    assert f"Batch {batch.pk}" in html
    assert "KwikID: PAN: invalid" in html  # the form's label for the field KwikID names
    # The attempt in people's words, not the error's class name.
    assert "KwikID rejected the upload (HTTP 400)" in html
    assert "KwikIDRejectedError" not in html
    assert "OTHER CUSTOMER" not in html


def test_history_names_portal_fields_by_their_labels(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = services.record_data(record) | {"existing_ckyc_no": "10012345678901"}
    services.record_update(actor=alice, record=record, data=data)
    client.force_login(alice)

    html = page(client, record)

    assert "Existing CKYC number (KIN)" in html
    assert "Upload due on" in html


# Who reviewed it, the history in the form's words, possible duplicates --------------------------------------


def test_a_resubmitted_record_no_longer_names_its_last_reviewer(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    record = services.record_return(actor=bob, record=record, reason="Fix the address")
    client.force_login(alice)
    assert "returned by bob" in page(client, record)

    record = services.record_submit(actor=alice, record=record)

    assert (record.reviewed_by, record.reviewed_at) == (None, None)
    html = page(client, record)
    assert "by bob" not in html.split("History")[0]
    assert "Returned</strong> by bob: Fix the address" in html  # the decision stays in the history


def test_an_approved_record_says_who_approved_it(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    record = services.record_approve(actor=bob, record=record)
    client.force_login(alice)

    assert "approved by bob" in page(client, record)


def edit_relative(maker: User, record: KycRecord, name: str) -> None:
    data = services.record_data(record) | {"applicant_rel_first_name": name}
    services.record_update(actor=maker, record=record, data=data)


def test_history_of_a_masked_change_says_it_changed_and_uses_the_forms_label(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    edit_relative(alice, record, "SURESHCHANDRA")
    otp_login(client, alice)  # personal data in clear needs the second factor

    html = page(client, record)
    form = client.get(reverse("records:edit", args=[record.pk])).content.decode()

    history = html[html.index('id="history-title"') :]
    assert "SURESH" not in history
    assert "Father&#x27;s or spouse&#x27;s first name" in history
    assert "Father&#x27;s or spouse&#x27;s first name" in form
    assert "reveal to see how" in history


def test_history_shows_the_change_in_clear_once_the_record_is_revealed(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    edit_relative(alice, record, "SURESHCHANDRA")
    otp_login(client, alice)  # personal data in clear needs the second factor

    client.post(reverse("records:reveal", args=[record.pk]))
    history = page(client, record).split('id="history-title"')[1]

    assert "<del>SURESH</del>" in history
    assert "<ins>SURESHCHANDRA</ins>" in history


def test_an_auditor_sees_the_history_masked(
    client: Client, alice: User, branch_a: Branch, institution: Institution
) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    edit_relative(alice, record, "SURESHCHANDRA")
    client.force_login(make_user("ivan", Role.AUDITOR))

    client.post(reverse("records:reveal", args=[record.pk]))  # refused: auditors see PII masked
    history = page(client, record).split('id="history-title"')[1]

    assert "SURESH" not in history
    assert "S•••" in history


def test_edit_events_keep_personal_data_only_encrypted(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    edit_relative(alice, record, "SURESHCHANDRA")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT changed_fields::text, changed_values FROM records_recordevent WHERE record_id = %s",
            [record.pk],
        )
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert "SURESH" not in stored.upper()
    event = record.events.get(action="edited")
    assert services.event_clear_values(event) == {"applicant_rel_first_name": ["SURESH", "SURESHCHANDRA"]}


def test_duplicate_pan_warning_links_only_the_records_the_user_may_see(
    client: Client, alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    record = new_record(alice, branch_a, 1, pan="ABCPE1234F")
    twin = new_record(alice, branch_a, 2, pan="ABCPE1234F")
    elsewhere = new_record(mallory, branch_b, 3, pan="ABCPE1234F")
    new_record(alice, branch_a, 4, pan="ABCPE1234G")
    client.force_login(alice)

    html = page(client, record)

    assert "2 other records have the same PAN" in html
    assert f'href="{reverse("records:detail", args=[twin.pk])}"' in html
    assert elsewhere.kyc_ref_no not in html
    # Another branch's twin is counted as elsewhere in the institution, its branch never named.
    assert "1 more is elsewhere in the institution" in html
    assert "branch" not in html.split("the same PAN")[1].split("</div>")[0].lower()
    assert branch_b.code not in html


def test_a_record_without_a_twin_shows_no_duplicate_warning(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, 1, pan="ABCPE1234F")
    client.force_login(alice)

    assert "same PAN" not in page(client, record)


def test_yellow_buttons_use_the_readable_caution_style(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)

    detail = page(client, record)
    listing = client.get(reverse("records:list")).content.decode()

    # Bootstrap's outline-warning is yellow text on white (1.6:1); portal.css's caution style is 8.4:1.
    for html in (detail, listing):
        assert "btn-outline-warning" not in html
    assert 'btn-outline-caution" type="submit">Reveal personal data' in detail
    assert 'btn-outline-caution btn-sm" href="?due=soon' in listing


def test_an_edit_recorded_before_clear_values_were_kept_stays_masked_after_a_reveal(
    client: Client, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    create = RecordEvent.objects.create
    # Events are append-only: this one is written as events were before 0007, without clear values.
    monkeypatch.setattr(RecordEvent.objects, "create", lambda **kw: create(**(kw | {"changed_values": ""})))
    edit_relative(alice, record, "SURESHCHANDRA")
    monkeypatch.undo()
    otp_login(client, alice)  # personal data in clear needs the second factor

    client.post(reverse("records:reveal", args=[record.pk]))
    history = page(client, record).split('id="history-title"')[1]

    assert "SURESH" not in history
    assert "(changed; kept masked only)" in history
