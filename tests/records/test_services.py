"""Record services (records.services): every write, its permission checks, its audit events."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from ckycportal.errors import ActionRefused
from institutions.models import Branch, Role, User
from records import services
from records.models import ALLOWED_TRANSITIONS, KycRecord, RecordEvent, Status
from tests.conftest import approved_record, make_user, new_record

from .factories import valid_record

pytestmark = pytest.mark.django_db


def submitted_record(maker: User, branch: Branch, n: int = 1) -> KycRecord:
    return services.record_submit(actor=maker, record=new_record(maker, branch, n))


def problem_fields(exc: services.RecordInvalid) -> set[str]:
    return {problem.field for problem in exc.problems}


# record_create -----------------------------------------------------------------------------------------


def test_create_saves_a_draft_with_blank_fields(alice: User, branch_a: Branch) -> None:
    record = services.record_create(actor=alice, branch=branch_a, data={"kyc_ref_no": "REF-1", "pan": ""})

    assert (record.status, record.pan, record.dob) == (Status.DRAFT, "", None)


def test_create_writes_a_created_event(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)

    assert list(record.events.values_list("action", "actor", "to_status")) == [
        (RecordEvent.Action.CREATED, alice.pk, Status.DRAFT)
    ]


def test_create_refuses_a_malformed_filled_value_naming_the_field(alice: User, branch_a: Branch) -> None:
    data = valid_record() | {"pan": "ABC"}

    with pytest.raises(services.RecordInvalid) as caught:
        services.record_create(actor=alice, branch=branch_a, data=data)

    assert problem_fields(caught.value) == {"pan"}


def test_create_refused_for_malformed_value_saves_nothing(alice: User, branch_a: Branch) -> None:
    with pytest.raises(services.RecordInvalid):
        services.record_create(actor=alice, branch=branch_a, data=valid_record() | {"poa_pin_code": "12"})

    assert (KycRecord.objects.count(), RecordEvent.objects.count()) == (0, 0)


def test_create_refused_to_a_checker(bob: User, branch_a: Branch) -> None:
    with pytest.raises(PermissionDenied):
        services.record_create(actor=bob, branch=branch_a, data=valid_record())


def test_create_refused_at_another_branch(alice: User, branch_b: Branch) -> None:
    with pytest.raises(PermissionDenied):
        services.record_create(actor=alice, branch=branch_b, data=valid_record())


def test_create_clears_current_address_when_same_as_poa(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, current_address_same_as_poa_address="Y")

    assert (record.current_address_line_1, record.current_pin_code) == ("", "")


# record_update -----------------------------------------------------------------------------------------


def test_update_records_the_changed_fields_in_the_event(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = services.record_data(record) | {"applicant_first_name": "ANIL", "poa_vtc": "Thane"}

    services.record_update(actor=alice, record=record, data=data)

    event = record.events.get(action=RecordEvent.Action.EDITED)
    assert sorted(c["field"] for c in event.changed_fields) == ["applicant_first_name", "poa_vtc"]


def test_update_event_keeps_old_and_new_values_of_plain_fields(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = services.record_data(record) | {"kyc_verifier_employee_code": "EMP-0099", "gender": "F"}

    services.record_update(actor=alice, record=record, data=data)

    event = record.events.get(action=RecordEvent.Action.EDITED)
    assert sorted(event.changed_fields, key=lambda c: c["field"]) == [
        {"field": "gender", "old": "M", "new": "F"},
        {"field": "kyc_verifier_employee_code", "old": "EMP-0042", "new": "EMP-0099"},
    ]


def test_update_event_keeps_dates_as_iso_text(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = services.record_data(record) | {"kyc_declaration_date": date(2026, 11, 1)}

    services.record_update(actor=alice, record=record, data=data)

    event = record.events.get(action=RecordEvent.Action.EDITED)
    assert event.changed_fields == [
        {"field": "kyc_declaration_date", "old": "2026-11-02", "new": "2026-11-01"}
    ]


def test_update_saves_the_new_values(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)

    services.record_update(actor=alice, record=record, data={"applicant_first_name": "anil"})

    record.refresh_from_db()
    assert record.applicant_first_name == "ANIL"


def test_update_without_changes_writes_no_event(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)

    services.record_update(actor=alice, record=record, data=services.record_data(record))

    assert not record.events.filter(action=RecordEvent.Action.EDITED).exists()


def test_update_refused_when_record_is_not_editable(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(services.TransitionNotAllowed):
        services.record_update(actor=alice, record=record, data={"applicant_first_name": "ANIL"})


def test_update_refused_when_not_editable_changes_nothing(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(services.TransitionNotAllowed):
        services.record_update(actor=alice, record=record, data={"applicant_first_name": "ANIL"})

    record.refresh_from_db()
    assert record.applicant_first_name == "RAVI"


def test_update_refused_to_a_maker_of_another_branch(alice: User, mallory: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_update(actor=mallory, record=record, data={"applicant_first_name": "ANIL"})


# record_submit -----------------------------------------------------------------------------------------


def test_submit_refuses_an_incomplete_record_naming_the_fields(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, pan="", applicant_first_name="", poa_pin_code="")

    with pytest.raises(services.RecordInvalid) as caught:
        services.record_submit(actor=alice, record=record)

    assert problem_fields(caught.value) == {"pan", "applicant_first_name", "poa_pin_code"}


def test_submit_refused_leaves_the_record_a_draft(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, pan="")

    with pytest.raises(services.RecordInvalid):
        services.record_submit(actor=alice, record=record)

    record.refresh_from_db()
    assert record.status == Status.DRAFT


def test_submit_moves_a_valid_record_to_submitted(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    assert (record.status, record.submitted_by) == (Status.SUBMITTED, alice)


def test_submit_writes_a_submitted_event(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    event = record.events.get(action=RecordEvent.Action.SUBMITTED)
    assert (event.actor, event.from_status, event.to_status) == (alice, Status.DRAFT, Status.SUBMITTED)


# record_approve / record_return ------------------------------------------------------------------------


def test_approve_moves_the_record_to_approved_with_its_reviewer(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a)

    assert (record.status, record.reviewed_by) == (Status.APPROVED, bob)


def test_approve_writes_an_approved_event(alice: User, bob: User, branch_a: Branch) -> None:
    record = approved_record(alice, bob, branch_a)

    event = record.events.get(action=RecordEvent.Action.APPROVED)
    assert (event.actor, event.from_status, event.to_status) == (bob, Status.SUBMITTED, Status.APPROVED)


def test_maker_cannot_approve_own_record(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_approve(actor=alice, record=record)


def test_checker_of_another_branch_cannot_approve(alice: User, dave: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_approve(actor=dave, record=record)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_admin_or_auditor_cannot_approve(alice: User, branch_a: Branch, role: Role) -> None:
    record = submitted_record(alice, branch_a)
    # Given the branch too, so only the role can be what refuses them.
    reviewer = make_user("reviewer", role, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_approve(actor=reviewer, record=record)


def test_refused_approval_leaves_the_record_submitted(alice: User, dave: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_approve(actor=dave, record=record)

    record.refresh_from_db()
    assert record.status == Status.SUBMITTED


def test_return_moves_the_record_to_returned_with_the_reason(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)

    record = services.record_return(actor=bob, record=record, reason="  PAN does not match the card  ")

    assert (record.status, record.return_reason) == (Status.RETURNED, "PAN does not match the card")


def test_return_writes_a_returned_event_with_the_reason(alice: User, bob: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    services.record_return(actor=bob, record=record, reason="PAN does not match the card")

    event = record.events.get(action=RecordEvent.Action.RETURNED)
    assert (event.actor, event.to_status, event.reason) == (
        bob,
        Status.RETURNED,
        "PAN does not match the card",
    )


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_return_needs_a_reason(alice: User, bob: User, branch_a: Branch, reason: str) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(ActionRefused, match="why"):
        services.record_return(actor=bob, record=record, reason=reason)


def test_maker_cannot_return_own_record(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_return(actor=alice, record=record, reason="changed my mind")


def test_resubmitting_a_returned_record_clears_the_return_reason(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = services.record_return(actor=bob, record=submitted_record(alice, branch_a), reason="Fix the PAN")

    record = services.record_submit(actor=alice, record=record)

    assert (record.status, record.return_reason) == (Status.SUBMITTED, "")


def test_database_refuses_the_maker_as_reviewer(alice: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(IntegrityError), transaction.atomic():
        KycRecord.objects.filter(pk=record.pk).update(reviewed_by=alice)


def test_stale_second_approval_gets_a_conflict(alice: User, bob: User, carol: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)
    first, second = KycRecord.objects.get(pk=record.pk), KycRecord.objects.get(pk=record.pk)
    services.record_approve(actor=bob, record=first)

    with pytest.raises(services.RecordConflict):
        services.record_approve(actor=carol, record=second)


def test_stale_second_approval_leaves_one_approved_event_by_the_winner(
    alice: User, bob: User, carol: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    first, second = KycRecord.objects.get(pk=record.pk), KycRecord.objects.get(pk=record.pk)
    services.record_approve(actor=bob, record=first)
    with pytest.raises(services.RecordConflict):
        services.record_approve(actor=carol, record=second)

    approvals = RecordEvent.objects.filter(record=record, action=RecordEvent.Action.APPROVED)
    assert list(approvals.values_list("actor", flat=True)) == [bob.pk]


def test_approving_a_draft_is_not_an_allowed_transition(alice: User, bob: User, branch_a: Branch) -> None:
    assert Status.APPROVED not in ALLOWED_TRANSITIONS[Status.DRAFT]
    record = new_record(alice, branch_a)

    with pytest.raises(services.TransitionNotAllowed):
        services.record_approve(actor=bob, record=record)


def test_deciding_an_already_decided_record_says_who_decided_it(
    alice: User, bob: User, carol: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a)

    with pytest.raises(services.RecordConflict, match=r"changed meanwhile: it is now approved.* by bob"):
        services.record_approve(actor=carol, record=record)


def test_someone_who_edited_the_record_cannot_review_it(alice: User, bob: User, branch_a: Branch) -> None:

    record = new_record(alice, branch_a)
    # bob edits the record as a maker, then becomes a checker: he is still one of its makers.
    bob.role = Role.MAKER
    bob.save()
    data = valid_record()
    data.update(kyc_ref_no=record.kyc_ref_no, kyc_verifier_employee_code="EMP-0099")
    services.record_update(actor=bob, record=record, data=data)
    record = services.record_submit(actor=alice, record=record)
    bob.role = Role.CHECKER
    bob.save()

    with pytest.raises(PermissionDenied, match="entered, edited or submitted"):
        services.record_approve(actor=bob, record=record)
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED


# record_withdraw ---------------------------------------------------------------------------------------


def test_withdraw_takes_a_submitted_record_back_to_draft(alice: User, branch_a: Branch) -> None:
    record = services.record_withdraw(actor=alice, record=submitted_record(alice, branch_a))

    assert record.status == Status.DRAFT


def test_withdraw_writes_a_withdrawn_event(alice: User, branch_a: Branch) -> None:
    record = services.record_withdraw(actor=alice, record=submitted_record(alice, branch_a))

    event = record.events.get(action=RecordEvent.Action.WITHDRAWN)
    assert (event.actor, event.from_status, event.to_status) == (alice, Status.SUBMITTED, Status.DRAFT)


def test_withdraw_refused_after_approval(alice: User, bob: User, branch_a: Branch) -> None:
    record = approved_record(alice, bob, branch_a)

    with pytest.raises(services.TransitionNotAllowed):
        services.record_withdraw(actor=alice, record=record)


def test_withdraw_refused_to_a_checker(alice: User, bob: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)

    with pytest.raises(PermissionDenied):
        services.record_withdraw(actor=bob, record=record)
