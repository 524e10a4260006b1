"""The institution settings page and its service: who may change what, the token never shown, the audit event
saying what really changed, new deadline days re-dating open records, a new token resuming sending."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import AuditEvent, Branch, Institution, InstitutionChange, Role, User
from tests.conftest import TOKEN, make_user, new_record, otp_login
from uploads.institution import institution_configure

pytestmark = pytest.mark.django_db


def test_new_deadline_days_re_date_open_records(
    institution: Institution, alice: User, erin: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    update = new_record(alice, branch_a, 2, existing_ckyc_no="12345678901234")
    assert record.upload_due_on == record.kyc_verification_date + timedelta(days=10)
    assert update.upload_due_on == update.kyc_verification_date + timedelta(days=7)

    institution_configure(
        actor=erin, institution=institution, data={"upload_due_days": 5, "update_due_days": 3}
    )

    record.refresh_from_db()
    update.refresh_from_db()
    assert record.upload_due_on == record.kyc_verification_date + timedelta(days=5)
    assert update.upload_due_on == update.kyc_verification_date + timedelta(days=3)


def test_other_settings_leave_deadlines_alone(
    institution: Institution, alice: User, erin: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    record.upload_due_on = record.kyc_verification_date  # as if set by hand: a recompute would move it
    record.save(update_fields=["upload_due_on"])
    institution_configure(actor=erin, institution=institution, data={"max_records_per_request": 50})
    record.refresh_from_db()
    assert record.upload_due_on == record.kyc_verification_date


def test_the_audit_event_names_only_what_changed_old_and_new(institution: Institution, erin: User) -> None:
    data = {"name": institution.name, "fi_code": institution.fi_code, "max_records_per_request": 50}
    institution_configure(actor=erin, institution=institution, data=data, token="a-new-token-1234")
    event = AuditEvent.objects.get(action="institution_configured")
    assert event.detail["changes"] == {"max_records_per_request": [3, 50]}
    assert event.detail["token_replaced"] is True
    assert "a-new-token" not in str(event.detail)


def test_saving_unchanged_settings_writes_no_event(institution: Institution, erin: User) -> None:
    institution_configure(actor=erin, institution=institution, data={"name": institution.name})
    assert not AuditEvent.objects.filter(action="institution_configured").exists()


def test_the_settings_page_audits_and_re_dates_what_it_changed(
    client: Client, institution: Institution, alice: User, erin: User, branch_a: Branch
) -> None:
    # The page's form writes the new values onto the instance before the service sees it: the service
    # must compare with what is stored, or it finds nothing changed.

    record = new_record(alice, branch_a)
    otp_login(client, erin)
    response = client.post(
        reverse("uploads:institution_settings"), settings_form(institution, upload_due_days=12)
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="institution_configured")
    assert event.detail["changes"] == {"upload_due_days": [10, 12]}
    record.refresh_from_db()
    assert record.upload_due_on == record.kyc_verification_date + timedelta(days=12)


# The institution settings page -------------------------------------------------------------------------


def settings_form(institution: Institution, **overrides: Any) -> dict[str, Any]:
    fields = ("name", "fi_code", "region_code", "cersai_username", "api_version", "api_base_url")
    data = {name: getattr(institution, name) for name in fields}
    numbers = {
        "max_records_per_request": institution.max_records_per_request,
        "max_request_bytes": institution.max_request_bytes,
        "upload_due_days": institution.upload_due_days,
        "update_due_days": institution.update_due_days,
    }
    return data | numbers | {"new_token": ""} | overrides


def propose_and_approve(client: Client, institution: Institution, proposer: User, **overrides: Any) -> User:
    """The proposer saves the form; a second administrator approves on the page. Returns the approver."""
    otp_login(client, proposer)
    form = settings_form(institution, reason="Token rotated by KwikID", **overrides)
    client.post(reverse("uploads:institution_settings"), form)
    change = InstitutionChange.objects.get(status=InstitutionChange.Status.PENDING)
    approver = make_user("fiona", Role.ADMIN)
    otp_login(client, approver)
    client.post(reverse("uploads:institution_change_approve", kwargs={"pk": change.pk}))
    return approver


def test_admin_saving_a_new_token_stores_it_once_approved_with_who_replaced_it(
    client: Client, erin: User, institution: Institution
) -> None:
    approver = propose_and_approve(client, institution, erin, new_token="new-token-5555aaaa")

    institution.refresh_from_db()
    assert (institution.api_token, institution.token_updated_by) == ("new-token-5555aaaa", approver)


def test_admin_saving_a_new_token_lifts_the_sending_pause_once_approved(
    client: Client, erin: User, institution: Institution
) -> None:
    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason="KwikID refused the token"
    )

    propose_and_approve(client, institution, erin, new_token="new-token-5555aaaa")

    institution.refresh_from_db()
    assert (institution.sending_paused_at, institution.sending_paused_reason) == (None, "")


def test_admin_saving_without_a_token_keeps_the_token(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)

    client.post(reverse("uploads:institution_settings"), settings_form(institution, name="Renamed Bank"))

    institution.refresh_from_db()
    assert (institution.name, institution.api_token) == ("Renamed Bank", TOKEN)


def test_settings_page_never_shows_the_token(client: Client, erin: User, institution: Institution) -> None:
    otp_login(client, erin)

    response = client.get(reverse("uploads:institution_settings"))

    assert TOKEN not in response.content.decode()


def test_settings_page_shows_the_token_last_four_characters(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)

    response = client.get(reverse("uploads:institution_settings"))

    assert f"…{TOKEN[-4:]}" in response.content.decode()


def test_settings_form_with_errors_does_not_echo_the_new_token(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)
    data = settings_form(institution, max_records_per_request=0, new_token="typed-token-7777bbbb")

    response = client.post(reverse("uploads:institution_settings"), data)

    assert (response.status_code, "typed-token-7777bbbb" in response.content.decode()) == (200, False)


def test_maker_cannot_open_the_settings_page(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.get(reverse("uploads:institution_settings"))

    assert response.status_code == 403
