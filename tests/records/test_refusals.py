"""One error vocabulary: every refusal a records service makes is a ``PortalError`` whose message the user
reads as it is, and views show it through ``ckycportal.views`` (the helper is tested here too)."""

from __future__ import annotations

import pytest
from django.contrib.messages import ERROR, get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse

from ckycportal.errors import ActionRefused, PortalError
from ckycportal.views import refusal_message, show_refusal
from institutions.models import Branch, User
from records import services
from records.models import KycRecord, Status
from records.validation import Problem
from tests.conftest import new_record, otp_login


def submitted(maker: User, branch: Branch) -> KycRecord:
    return services.record_submit(actor=maker, record=new_record(maker, branch))


def page_errors(response: object) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level == ERROR]  # type: ignore[attr-defined]


# The vocabulary ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "base"),
    [
        (services.RecordInvalid, PortalError),
        (services.RecordConflict, PortalError),
        (services.TransitionNotAllowed, ActionRefused),
    ],
)
def test_every_named_refusal_of_records_is_a_portal_error(refusal: type[Exception], base: type) -> None:
    assert issubclass(refusal, base)
    assert not issubclass(refusal, ValueError)


def test_a_portal_error_carries_its_message_as_it_is_and_has_a_default() -> None:
    refusal = ActionRefused("Say why the batch is cancelled.")
    assert refusal.message == str(refusal) == "Say why the batch is cancelled."
    assert PortalError().message == PortalError.default_message


def test_record_invalid_keeps_its_problems_and_its_message() -> None:
    problem = Problem("pan", "PAN is required.")
    refusal = services.RecordInvalid([problem])
    assert refusal.problems == [problem]
    assert refusal.message == str(refusal) == "The record has problems in: pan"


def test_refusal_message_reads_every_kind_of_refusal() -> None:
    assert refusal_message(ActionRefused("Not now.")) == "Not now."
    assert refusal_message(PermissionDenied("Only makers.")) == "Only makers."
    assert refusal_message(ValidationError({"reason": "Give a reason.", "code": "Taken."})) in (
        "Give a reason. Taken.",
        "Taken. Give a reason.",
    )


def test_show_refusal_puts_the_message_on_the_next_page() -> None:
    request = RequestFactory().post("/")
    request.session = {}  # type: ignore[attr-defined]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    show_refusal(request, ActionRefused("You cannot deactivate yourself."), prefix="Not done: ")
    assert [(m.level, m.message) for m in get_messages(request)] == [
        (ERROR, "Not done: You cannot deactivate yourself.")
    ]


# Services ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_returning_a_record_without_a_reason_is_a_portal_error_not_a_value_error(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    with pytest.raises(PortalError) as refused:
        services.record_return(actor=bob, record=record, reason=" ")
    assert isinstance(refused.value, ActionRefused)
    assert not isinstance(refused.value, ValueError)
    assert refused.value.message == "Say why the record is returned, so the maker can fix it."
    record.refresh_from_db()
    assert record.status == Status.SUBMITTED


@pytest.mark.django_db
def test_a_bulk_decision_that_is_neither_approve_nor_return_is_refused(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    with pytest.raises(ActionRefused, match="Choose approve or return"):
        services.records_review(actor=bob, record_ids=[record.pk], decision="delete")


@pytest.mark.django_db
def test_a_decision_on_a_record_decided_meanwhile_is_a_portal_error(
    alice: User, bob: User, carol: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    services.record_approve(actor=bob, record=record)
    with pytest.raises(PortalError, match="changed meanwhile"):
        services.record_return(actor=carol, record=KycRecord.objects.get(pk=record.pk), reason="Wrong PAN")


# Views ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bulk_page_shows_a_service_refusal_as_its_message(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    otp_login(client, bob)

    response = client.post(
        reverse("records:review_bulk"), {"record": [str(record.pk)], "decision": "return", "reason": ""}
    )

    assert response.status_code == 302
    assert page_errors(response) == ["Say why the records are returned, so their makers can fix them."]
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED


@pytest.mark.django_db
def test_the_record_page_shows_a_refused_transition_as_its_message(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    draft = new_record(alice, branch_a)
    otp_login(client, bob)

    response = client.post(reverse("records:approve", args=[draft.pk]))

    assert response.status_code == 302
    assert page_errors(response) == ["A draft cannot be decided on: its maker must submit it first."]


@pytest.mark.django_db
def test_the_record_page_shows_a_return_without_a_reason_as_the_forms_message(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    otp_login(client, bob)

    response = client.post(reverse("records:return", args=[record.pk]), {"reason": ""})

    assert response.status_code == 302
    assert page_errors(response) == ["Say why the record is returned, so the maker can fix it."]
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED
