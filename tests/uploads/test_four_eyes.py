"""Four eyes on the institution settings that can send the token and the records elsewhere or stop uploads:
a new KwikID base URL needs its token typed again; the endpoint, API version, token and CERSAI codes change
only when a second administrator approves; a single administrator may opt out, with a warning; every step
is audited, and no event holds a token."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import AuditEvent, Institution, InstitutionChange, Role, User
from reports.audit import AuditFilters, audit_page
from tests.conftest import TOKEN, make_user, otp_login
from tests.uploads.test_institution import settings_form
from uploads.institution import (
    ENDPOINT_NEEDS_TOKEN,
    InstitutionChangeRefused,
    institution_change_approve,
    institution_change_propose,
    institution_change_reject,
    institution_change_withdraw,
    institution_configure,
    institution_settings_save,
    institution_single_admin_set,
)

pytestmark = pytest.mark.django_db

NEW_URL = "https://elsewhere.example.com"
NEW_TOKEN = "new-token-for-elsewhere-9z8y"


@pytest.fixture
def fiona(institution: Institution) -> User:
    """A second admin."""
    return make_user("fiona", Role.ADMIN)


def propose(actor: User, institution: Institution, **changes: Any) -> InstitutionChange:
    token = changes.pop("token", NEW_TOKEN)
    changes = changes or {"api_base_url": NEW_URL}
    return institution_change_propose(
        actor=actor, institution=institution, changes=changes, token=token, reason="KwikID moved us"
    )


def every_event_text() -> str:
    return " ".join(str(detail) for detail in AuditEvent.objects.values_list("detail", flat=True))


# A new endpoint needs its token -----------------------------------------------------------------------


def test_page_refuses_a_new_endpoint_with_a_blank_token(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    otp_login(client, erin)

    response = client.post(
        reverse("uploads:institution_settings"),
        settings_form(institution, api_base_url=NEW_URL, reason="Moved", max_records_per_request=7),
    )

    assert response.status_code == 200
    assert response.context["form"].errors["new_token"] == [ENDPOINT_NEEDS_TOKEN]
    institution.refresh_from_db()
    # Nothing half-saved: not the endpoint, and not the other setting of the same form either.
    assert (institution.api_base_url, institution.max_records_per_request) != (NEW_URL, 7)
    assert institution.max_records_per_request == 3
    assert not InstitutionChange.objects.exists()


def test_page_refuses_a_new_endpoint_with_a_blank_token_even_when_opted_out(
    client: Client, erin: User, institution: Institution
) -> None:
    institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="Only admin")
    otp_login(client, erin)

    response = client.post(
        reverse("uploads:institution_settings"), settings_form(institution, api_base_url=NEW_URL)
    )

    assert response.context["form"].errors["new_token"] == [ENDPOINT_NEEDS_TOKEN]
    institution.refresh_from_db()
    assert institution.api_base_url != NEW_URL


def test_configure_refuses_a_new_endpoint_without_a_new_token(erin: User, institution: Institution) -> None:
    with pytest.raises(ValidationError) as refused:
        institution_configure(actor=erin, institution=institution, data={"api_base_url": NEW_URL})

    assert refused.value.message_dict == {"api_token": [ENDPOINT_NEEDS_TOKEN]}
    institution.refresh_from_db()
    assert institution.api_base_url != NEW_URL


def test_configure_command_refuses_a_new_endpoint_without_a_token_file(tmp_path: Path) -> None:
    options = {"fi_code": "NEWFI01", "region_code": "MH", "username": "NEWUSER"}
    token_file = tmp_path / "token"
    token_file.write_text("file-token-abcd1234", encoding="utf-8")
    call_command(
        "configure_institution",
        api_base_url="https://verify.example.com",
        token_file=str(token_file),
        stdout=io.StringIO(),
        **options,
    )

    with pytest.raises(CommandError, match="Enter the token again"):
        call_command("configure_institution", api_base_url=NEW_URL, stdout=io.StringIO(), **options)

    assert Institution.objects.get().api_base_url == "https://verify.example.com"


# Proposing -------------------------------------------------------------------------------------------


def test_page_keeps_endpoint_and_token_pending_and_saves_the_rest(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    otp_login(client, erin)
    form = settings_form(
        institution, api_base_url=NEW_URL, new_token=NEW_TOKEN, reason="KwikID moved us", upload_due_days=12
    )

    response = client.post(reverse("uploads:institution_settings"), form)

    assert response.status_code == 302
    institution.refresh_from_db()
    assert (institution.api_base_url, institution.api_token) != (NEW_URL, NEW_TOKEN)
    assert (institution.api_token, institution.upload_due_days) == (TOKEN, 12)
    change = InstitutionChange.objects.get()
    assert (change.status, change.proposed_by, change.reason) == ("pending", erin, "KwikID moved us")
    assert change.changes == {"api_base_url": [institution.api_base_url, NEW_URL]}
    assert (change.new_token, change.new_token_hint) == (NEW_TOKEN, "…9z8y")


@pytest.mark.parametrize(
    ("field", "value"),
    [("fi_code", "OTHER01"), ("region_code", "KA"), ("cersai_username", "SOMEONE"), ("api_version", "V1.4")],
)
def test_cersai_codes_and_api_version_wait_for_a_second_admin(
    erin: User, fiona: User, institution: Institution, field: str, value: str
) -> None:
    data = {field: value, "name": "Renamed Bank"}

    change = institution_settings_save(actor=erin, institution=institution, data=data, reason="Circular 12")

    institution.refresh_from_db()
    assert getattr(institution, field) != value
    assert institution.name == "Renamed Bank"
    assert change is not None and change.changes[field][1] == value


def test_a_new_token_alone_waits_for_a_second_admin(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = institution_settings_save(
        actor=erin, institution=institution, data={}, token="rotated-token-0001", reason="Rotation"
    )

    institution.refresh_from_db()
    assert institution.api_token == TOKEN
    assert change is not None and change.replaces_token


def test_a_proposal_needs_a_reason(erin: User, fiona: User, institution: Institution) -> None:
    with pytest.raises(ValidationError) as refused:
        institution_change_propose(
            actor=erin, institution=institution, changes={"region_code": "KA"}, reason=" "
        )

    assert list(refused.value.message_dict) == ["reason"]


def test_a_proposal_is_validated_before_it_waits(erin: User, fiona: User, institution: Institution) -> None:
    with pytest.raises(ValidationError) as refused:
        propose(erin, institution, region_code="not a code!", token="")

    assert "region_code" in refused.value.message_dict
    assert not InstitutionChange.objects.exists()


def test_a_second_proposal_is_refused_while_one_is_pending(
    erin: User, fiona: User, institution: Institution
) -> None:
    propose(erin, institution)

    with pytest.raises(InstitutionChangeRefused, match="already waits"):
        propose(fiona, institution, region_code="KA", token="")

    assert InstitutionChange.objects.count() == 1


def test_database_allows_one_pending_change_per_institution(
    erin: User, fiona: User, institution: Institution
) -> None:
    propose(erin, institution)

    with pytest.raises(IntegrityError), transaction.atomic():
        InstitutionChange.objects.create(institution=institution, proposed_by=fiona, reason="x")


def test_the_pending_token_is_encrypted_at_rest(erin: User, fiona: User, institution: Institution) -> None:
    change = propose(erin, institution)

    with connection.cursor() as cursor:
        cursor.execute("SELECT new_token FROM institutions_institutionchange WHERE id = %s", [change.pk])
        (stored,) = cursor.fetchone()

    assert stored and NEW_TOKEN not in stored


def test_the_other_admins_are_mailed_without_the_token(
    erin: User, fiona: User, institution: Institution, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    User.objects.filter(pk=erin.pk).update(email="erin@bank.example")
    User.objects.filter(pk=fiona.pk).update(email="fiona@bank.example")

    with django_capture_on_commit_callbacks(execute=True):
        propose(erin, institution)

    assert [message.to for message in mail.outbox] == [["fiona@bank.example"]]
    assert "KwikID base URL" in mail.outbox[0].body and "KwikID bearer token" in mail.outbox[0].body
    assert NEW_TOKEN not in mail.outbox[0].body and NEW_URL not in mail.outbox[0].body


# Deciding --------------------------------------------------------------------------------------------


def test_another_admin_approves_and_the_change_applies(
    erin: User, fiona: User, institution: Institution
) -> None:
    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason="KwikID refused the token"
    )
    change = propose(erin, institution)

    institution_change_approve(actor=fiona, change_id=change.pk, note="Confirmed with KwikID by phone")

    institution.refresh_from_db()
    assert (institution.api_base_url, institution.api_token) == (NEW_URL, NEW_TOKEN)
    assert (institution.token_updated_by, institution.sending_paused_at) == (fiona, None)
    change.refresh_from_db()
    assert (change.status, change.decided_by, change.new_token) == ("approved", fiona, "")
    assert change.decision_note == "Confirmed with KwikID by phone"


def test_the_proposer_cannot_approve_their_own_change(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)

    with pytest.raises(InstitutionChangeRefused, match="another administrator"):
        institution_change_approve(actor=erin, change_id=change.pk)

    institution.refresh_from_db()
    assert institution.api_base_url != NEW_URL


def test_the_database_refuses_an_approval_by_the_proposer(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)

    with pytest.raises(IntegrityError), transaction.atomic():
        InstitutionChange.objects.filter(pk=change.pk).update(status="approved", decided_by=erin)


def test_approval_is_refused_when_the_settings_changed_since(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution, api_version="V1.4", token="")
    Institution.objects.filter(pk=institution.pk).update(api_version="V2.0")

    with pytest.raises(InstitutionChangeRefused, match="changed since this was proposed"):
        institution_change_approve(actor=fiona, change_id=change.pk)

    institution.refresh_from_db()
    assert institution.api_version == "V2.0"
    change.refresh_from_db()
    assert change.status == "pending"


def test_approval_is_refused_when_the_token_was_replaced_since(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution, token="proposed-token-1111")
    institution_configure(actor=None, institution=institution, data={}, token="operator-token-2222")

    with pytest.raises(InstitutionChangeRefused, match="KwikID bearer token"):
        institution_change_approve(actor=fiona, change_id=change.pk)

    institution.refresh_from_db()
    assert institution.api_token == "operator-token-2222"


def test_a_maker_cannot_approve(erin: User, fiona: User, alice: User, institution: Institution) -> None:
    change = propose(erin, institution)

    with pytest.raises(InstitutionChangeRefused, match="administrator"):
        institution_change_approve(actor=alice, change_id=change.pk)


def test_another_admin_rejects_and_nothing_applies(erin: User, fiona: User, institution: Institution) -> None:
    change = propose(erin, institution)

    institution_change_reject(actor=fiona, change_id=change.pk, note="Not from KwikID")

    institution.refresh_from_db()
    change.refresh_from_db()
    assert (institution.api_base_url, institution.api_token) != (NEW_URL, NEW_TOKEN)
    assert (change.status, change.decided_by, change.new_token) == ("rejected", fiona, "")
    with pytest.raises(InstitutionChangeRefused, match="no longer pending"):
        institution_change_approve(actor=fiona, change_id=change.pk)


def test_only_the_proposer_withdraws(erin: User, fiona: User, institution: Institution) -> None:
    change = propose(erin, institution)

    with pytest.raises(InstitutionChangeRefused, match="withdraw"):
        institution_change_withdraw(actor=fiona, change_id=change.pk)
    institution_change_withdraw(actor=erin, change_id=change.pk)

    change.refresh_from_db()
    assert (change.status, change.new_token) == ("withdrawn", "")
    propose(fiona, institution)  # the next change may be proposed now


def test_the_proposer_cannot_reject_their_own_change(
    erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)

    with pytest.raises(InstitutionChangeRefused):
        institution_change_reject(actor=erin, change_id=change.pk)


# Opting out with one administrator -------------------------------------------------------------------


def test_a_single_admin_may_opt_out_and_changes_then_apply_at_once(
    erin: User, institution: Institution
) -> None:
    institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="We are small")

    change = institution_settings_save(
        actor=erin, institution=institution, data={"api_base_url": NEW_URL}, token=NEW_TOKEN
    )

    institution.refresh_from_db()
    assert change is None
    assert (institution.api_base_url, institution.api_token) == (NEW_URL, NEW_TOKEN)
    event = AuditEvent.objects.get(action="institution_configured")
    assert event.detail["without_second_admin"] is True


def test_opting_out_is_refused_with_two_admins(erin: User, fiona: User, institution: Institution) -> None:
    with pytest.raises(InstitutionChangeRefused, match="2 active administrators"):
        institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="Quicker")

    institution.refresh_from_db()
    assert institution.single_admin_opt_out is False


def test_opting_out_needs_a_reason(erin: User, institution: Institution) -> None:
    with pytest.raises(InstitutionChangeRefused, match="reason"):
        institution_single_admin_set(actor=erin, institution=institution, opt_out=True)


def test_the_opt_out_is_not_honoured_once_a_second_admin_exists(erin: User, institution: Institution) -> None:
    institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="We are small")
    make_user("fiona", Role.ADMIN)

    change = institution_settings_save(
        actor=erin, institution=institution, data={"region_code": "KA"}, reason="Moved region"
    )

    institution.refresh_from_db()
    assert change is not None and institution.region_code == "MH"


def test_opting_out_and_back_in_are_audited(erin: User, institution: Institution) -> None:
    institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="We are small")
    institution_single_admin_set(actor=erin, institution=institution, opt_out=False)

    actions = list(
        AuditEvent.objects.filter(object_type="Institution")
        .order_by("pk")
        .values_list("action", "detail__changes")
    )
    assert actions == [
        ("institution_single_admin_opt_out", {"single_admin_opt_out": [False, True]}),
        ("institution_single_admin_opt_in", {"single_admin_opt_out": [True, False]}),
    ]


# The audit trail -------------------------------------------------------------------------------------


def test_each_step_is_audited_and_no_event_holds_a_token(
    erin: User, fiona: User, institution: Institution
) -> None:
    first = propose(erin, institution, token="first-token-1111qqqq")
    institution_change_reject(actor=fiona, change_id=first.pk)
    second = propose(erin, institution, token="second-token-2222rrrr")
    institution_change_withdraw(actor=erin, change_id=second.pk)
    third = propose(fiona, institution, token="third-token-3333ssss")
    institution_change_approve(actor=erin, change_id=third.pk)

    actions = list(
        AuditEvent.objects.filter(object_type="Institution")
        .order_by("pk")
        .values_list("action", "actor__username")
    )
    assert actions == [
        ("institution_change_proposed", "erin"),
        ("institution_change_rejected", "fiona"),
        ("institution_change_proposed", "erin"),
        ("institution_change_withdrawn", "erin"),
        ("institution_change_proposed", "fiona"),
        ("institution_configured", "erin"),
        ("institution_change_approved", "erin"),
    ]
    text = every_event_text()
    assert TOKEN not in text
    for token in ("first-token-1111qqqq", "second-token-2222rrrr", "third-token-3333ssss"):
        assert token not in text and token[-4:] not in text  # not even its last characters


def test_the_audit_log_names_the_steps_in_words(erin: User, fiona: User, institution: Institution) -> None:
    change = propose(erin, institution)
    institution_change_approve(actor=fiona, change_id=change.pk)

    rows, _ = audit_page(erin, AuditFilters())

    labels = [row.action_label for row in rows]
    assert "Institution change proposed (waits for a second administrator)" in labels
    assert "Institution change approved and applied" in labels
    approved = next(row for row in rows if row.action == "institution_change_approved")
    assert f"KwikID base URL: {institution.api_base_url} → {NEW_URL}" in approved.changes
    assert "Proposed by: erin" in approved.changes


# The page ----------------------------------------------------------------------------------------------


def test_page_shows_the_pending_change_with_its_proposer_to_the_other_admin(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)
    otp_login(client, fiona)

    page = client.get(reverse("uploads:institution_settings")).content.decode()

    assert "Change waiting for a second administrator" in page and "erin" in page
    assert NEW_URL in page and "replaced, ending …9z8y" in page and "KwikID moved us" in page
    assert NEW_TOKEN not in page
    assert reverse("uploads:institution_change_approve", kwargs={"pk": change.pk}) in page
    assert reverse("uploads:institution_change_reject", kwargs={"pk": change.pk}) in page
    assert reverse("uploads:institution_change_withdraw", kwargs={"pk": change.pk}) not in page


def test_page_offers_the_proposer_withdraw_only(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)
    otp_login(client, erin)

    page = client.get(reverse("uploads:institution_settings")).content.decode()

    assert reverse("uploads:institution_change_withdraw", kwargs={"pk": change.pk}) in page
    assert reverse("uploads:institution_change_approve", kwargs={"pk": change.pk}) not in page


def test_auditor_sees_the_pending_change_without_any_token_characters(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    propose(erin, institution)
    otp_login(client, make_user("audrey", Role.AUDITOR))

    page = client.get(reverse("uploads:institution_settings")).content.decode()

    assert "Change waiting for a second administrator" in page and NEW_URL in page
    assert "9z8y" not in page and TOKEN[-4:] not in page
    assert "<form" not in page.split('id="main"')[1]


def test_page_approve_applies_the_change(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)
    otp_login(client, fiona)

    response = client.post(reverse("uploads:institution_change_approve", kwargs={"pk": change.pk}))

    assert response.status_code == 302
    institution.refresh_from_db()
    assert institution.api_base_url == NEW_URL


def test_page_self_approval_is_refused_with_a_message(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    change = propose(erin, institution)
    otp_login(client, erin)

    response = client.post(
        reverse("uploads:institution_change_approve", kwargs={"pk": change.pk}), follow=True
    )

    assert "another administrator must approve it" in response.content.decode()
    institution.refresh_from_db()
    assert institution.api_base_url != NEW_URL


def test_page_answers_404_for_a_change_of_no_institution_of_theirs(
    client: Client, erin: User, fiona: User, institution: Institution
) -> None:
    otp_login(client, fiona)

    response = client.post(reverse("uploads:institution_change_approve", kwargs={"pk": 999999}))

    assert response.status_code == 404


def test_page_warns_while_the_single_admin_opt_out_is_on(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)
    before = client.get(reverse("uploads:institution_settings")).content.decode()

    client.post(reverse("uploads:institution_single_admin"), {"opt_out": "on", "reason": "Only admin"})
    after = client.get(reverse("uploads:institution_settings")).content.decode()

    assert "Four eyes is off." not in before and "Apply without a second administrator" in before
    assert "Four eyes is off." in after and "Restore four eyes" in after
    institution.refresh_from_db()
    assert institution.single_admin_opt_out is True


def test_page_says_an_opt_out_is_not_honoured_with_two_admins(
    client: Client, erin: User, institution: Institution
) -> None:
    institution_single_admin_set(actor=erin, institution=institution, opt_out=True, reason="Only admin")
    make_user("fiona", Role.ADMIN)
    otp_login(client, erin)

    page = client.get(reverse("uploads:institution_settings")).content.decode()

    assert "Four eyes is off." not in page and "the opt-out is not honoured" in page
