"""Record pages (records.views) through the test client: roles, branch scoping, the form, maker-checker."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.contrib.messages import ERROR, get_messages
from django.test import Client
from django.urls import reverse

from institutions.models import Branch, Institution, Role, User
from records import services
from records.models import KycRecord, Status
from records.validation import Problem, validate_record
from tests.conftest import PASSWORD, make_user, new_record, otp_login

from .factories import valid_record

pytestmark = pytest.mark.django_db

SAVE = "Save draft"
SUBMIT = "Save and submit for review"


def form_data(branch: Branch, action: str = SAVE, **overrides: Any) -> dict[str, str]:
    """valid_record() as a browser posts it: ISO dates, checkboxes "on" or absent, None as ""."""
    post: dict[str, str] = {}
    for name, value in (valid_record() | overrides).items():
        if isinstance(value, bool):
            if value:
                post[name] = "on"
        elif isinstance(value, date):
            post[name] = value.isoformat()
        else:
            post[name] = "" if value is None else str(value)
    return post | {"branch": str(branch.pk), "action": action}


def submitted_record(maker: User, branch: Branch) -> KycRecord:
    return services.record_submit(actor=maker, record=new_record(maker, branch))


@pytest.fixture
def auditor(institution: Institution) -> User:
    return make_user("ivan", Role.AUDITOR)


@pytest.mark.parametrize("url", ["/", "/records/"])
def test_anonymous_user_is_redirected_to_login(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


# Entering a record -------------------------------------------------------------------------------------


def test_bad_input_rerenders_the_form(client: Client, alice: User, branch_a: Branch) -> None:
    client.force_login(alice)

    response = client.post(reverse("records:create"), form_data(branch_a, pan="ABC"))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("field", "value"), [("pan", "ABC"), ("poa_pin_code", "12"), ("mobile_number", "12345")]
)
def test_bad_input_puts_an_error_next_to_each_named_field(
    client: Client, alice: User, branch_a: Branch, field: str, value: str
) -> None:
    client.force_login(alice)
    data = form_data(branch_a, pan="ABC", poa_pin_code="12", mobile_number="12345")

    response = client.post(reverse("records:create"), data)

    assert response.context["form"].errors.get(field), f"no error on {field} for {value!r}"


def test_bad_input_saves_nothing(client: Client, alice: User, branch_a: Branch) -> None:
    client.force_login(alice)

    client.post(reverse("records:create"), form_data(branch_a, pan="ABC", poa_pin_code="12"))

    assert not KycRecord.objects.exists()


def test_save_draft_creates_a_draft(client: Client, alice: User, branch_a: Branch) -> None:
    client.force_login(alice)

    client.post(reverse("records:create"), form_data(branch_a, SAVE))

    assert KycRecord.objects.get().status == Status.DRAFT


def test_save_and_submit_creates_a_submitted_record(client: Client, alice: User, branch_a: Branch) -> None:
    client.force_login(alice)

    response = client.post(reverse("records:create"), form_data(branch_a, SUBMIT))

    record = KycRecord.objects.get()
    assert (response.url, record.status) == (reverse("records:detail", args=[record.pk]), Status.SUBMITTED)


def test_save_and_submit_of_an_incomplete_record_saves_nothing(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)

    client.post(reverse("records:create"), form_data(branch_a, SUBMIT, pan="", applicant_first_name=""))

    assert not KycRecord.objects.exists()


def test_save_and_submit_of_an_incomplete_record_names_the_missing_fields(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)

    response = client.post(
        reverse("records:create"), form_data(branch_a, SUBMIT, pan="", applicant_first_name="")
    )

    errors = response.context["form"].errors
    assert {"pan", "applicant_first_name"} <= set(errors)


def test_save_and_submit_refused_by_the_service_leaves_no_draft(
    client: Client, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form accepts the record, submission refuses it: the draft saved first must be rolled back."""

    def refuse_on_submit(data: Any, *, complete: bool = True, **kwargs: Any) -> list[Problem]:
        problems = validate_record(data, complete=complete, **kwargs)
        return [*problems, Problem("pan", "Refused for this test")] if complete else problems

    monkeypatch.setattr(services, "validate_record", refuse_on_submit)
    client.force_login(alice)

    client.post(reverse("records:create"), form_data(branch_a, SUBMIT))

    assert not KycRecord.objects.exists()


def test_current_address_same_as_poa_clears_posted_current_fields(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)
    data = form_data(branch_a, current_address_same_as_poa_address="Y")

    client.post(reverse("records:create"), data)

    record = KycRecord.objects.get()
    current = [
        getattr(record, name) for name in ("current_address_line_1", "current_vtc", "current_pin_code")
    ]
    assert current == ["", "", ""]


def test_edit_saves_the_maker_changes(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    otp_login(client, alice)  # personal data in clear needs the second factor
    data = form_data(branch_a, kyc_ref_no=record.kyc_ref_no, applicant_first_name="ANIL")

    client.post(reverse("records:edit", args=[record.pk]), data)

    record.refresh_from_db()
    assert record.applicant_first_name == "ANIL"


# Maker-checker through the pages -----------------------------------------------------------------------


def test_maker_approving_own_record_is_redirected_with_an_error(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    client.force_login(alice)

    response = client.post(reverse("records:approve", args=[record.pk]))

    levels = [message.level for message in get_messages(response.wsgi_request)]
    assert (response.status_code, response.url, levels) == (
        302,
        reverse("records:detail", args=[record.pk]),
        [ERROR],
    )


def test_maker_approving_own_record_leaves_it_submitted(
    client: Client, alice: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    client.force_login(alice)

    client.post(reverse("records:approve", args=[record.pk]))

    record.refresh_from_db()
    assert record.status == Status.SUBMITTED


def test_checker_approves_through_the_page(client: Client, alice: User, bob: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)
    otp_login(client, bob)

    client.post(reverse("records:approve", args=[record.pk]))

    record.refresh_from_db()
    assert (record.status, record.reviewed_by) == (Status.APPROVED, bob)


def test_checker_returns_through_the_page_with_a_reason(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    otp_login(client, bob)

    client.post(reverse("records:return", args=[record.pk]), {"reason": "Wrong PAN"})

    record.refresh_from_db()
    assert (record.status, record.return_reason) == (Status.RETURNED, "Wrong PAN")


def test_return_without_a_reason_leaves_the_record_submitted(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    otp_login(client, bob)

    client.post(reverse("records:return", args=[record.pk]), {"reason": ""})

    record.refresh_from_db()
    assert record.status == Status.SUBMITTED


# Branch scoping and roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "method", "view"),
    [
        ("mallory", "get", "records:detail"),
        ("mallory", "get", "records:edit"),
        ("mallory", "post", "records:approve"),
        ("dave", "get", "records:detail"),
        ("dave", "post", "records:approve"),
    ],
)
def test_another_branch_record_is_not_found(
    client: Client,
    alice: User,
    mallory: User,
    dave: User,
    branch_a: Branch,
    username: str,
    method: str,
    view: str,
) -> None:
    record = submitted_record(alice, branch_a) if view == "records:approve" else new_record(alice, branch_a)
    otp_login(client, User.objects.get(username=username))

    response = getattr(client, method)(reverse(view, args=[record.pk]))

    assert response.status_code == 404


def test_another_branch_approval_attempt_leaves_the_record_submitted(
    client: Client, alice: User, dave: User, branch_a: Branch
) -> None:
    record = submitted_record(alice, branch_a)
    otp_login(client, dave)

    client.post(reverse("records:approve", args=[record.pk]))

    record.refresh_from_db()
    assert record.status == Status.SUBMITTED


def test_auditor_can_view_a_record(client: Client, alice: User, auditor: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(auditor)

    response = client.get(reverse("records:detail", args=[record.pk]))

    assert response.status_code == 200


def test_auditor_cannot_open_the_create_form(client: Client, auditor: User) -> None:
    client.force_login(auditor)

    response = client.get(reverse("records:create"))

    assert response.status_code == 403


def test_auditor_cannot_approve(client: Client, alice: User, auditor: User, branch_a: Branch) -> None:
    record = submitted_record(alice, branch_a)
    client.force_login(auditor)

    response = client.post(reverse("records:approve", args=[record.pk]))

    assert response.status_code == 403


def test_checker_cannot_open_the_create_form(client: Client, bob: User) -> None:
    otp_login(client, bob)

    response = client.get(reverse("records:create"))

    assert response.status_code == 403


# What the pages show -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "Record",
        "Basic details",
        "Proof of address",
        "Current address",
        "Contact details",
        "KYC verification details",
    ],
)
def test_detail_page_shows_each_section_heading(
    client: Client, alice: User, branch_a: Branch, heading: str
) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)

    response = client.get(reverse("records:detail", args=[record.pk]))

    assert f">{heading}</h2>" in response.content.decode()


def test_record_list_shows_the_masked_pan(client: Client, alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a, pan="ABCPE1234F")
    client.force_login(alice)

    response = client.get(reverse("records:list"))

    assert "XXXXXX234F" in response.content.decode()


def test_record_list_never_shows_the_full_pan(client: Client, alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a, pan="ABCPE1234F")
    client.force_login(alice)

    response = client.get(reverse("records:list"))

    assert "ABCPE1234F" not in response.content.decode()


def test_record_list_hides_other_branches(
    client: Client, alice: User, mallory: User, branch_b: Branch
) -> None:
    other = new_record(mallory, branch_b)
    client.force_login(alice)

    response = client.get(reverse("records:list"))

    assert other.kyc_ref_no not in response.content.decode()


def test_login_with_the_password_opens_the_dashboard(client: Client, alice: User) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True)

    assert response.wsgi_request.user == alice


def test_full_aadhaar_number_is_never_sent_back_to_the_browser(
    client: Any, alice: User, branch_a: Branch
) -> None:
    from tests.records.test_validation import AADHAAR

    client.force_login(alice)
    data = form_data(branch_a, poa_document="01", poa_document_number=AADHAAR, kyc_ref_no="AAD-1")
    response = client.post(reverse("records:create"), data)
    assert response.status_code == 200
    assert "poa_document_number" in response.context["form"].errors
    assert AADHAAR not in response.content.decode()


def test_isd_code_without_a_mobile_number_is_dropped_not_an_error(
    client: Any, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)
    data = form_data(branch_a, mobile_isd="91", mobile_number="", kyc_ref_no="ISD-1")
    response = client.post(reverse("records:create"), data)
    assert response.status_code == 302
    assert KycRecord.objects.get(kyc_ref_no="ISD-1").mobile_isd == ""


# The form's labels and messages ------------------------------------------------------------------------


def test_form_labels_match_validations_messages_and_mark_the_pin_code(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)
    response = client.post(
        reverse("records:create"), form_data(branch_a, SUBMIT, kyc_ref_no="", applicant_rel_name_title="")
    )
    form = response.context["form"]
    html = response.content.decode()

    assert (form.fields["poa_pin_code"].label, form.fields["poa_country"].label) == ("PIN code*", "Country*")
    assert form.fields["applicant_rel_name_title"].label == "Father's or spouse's title*"
    assert form.errors["kyc_ref_no"] == ["KYC reference number is required"]
    summary = html[html.index("Nothing was saved") : html.index("</div>", html.index("Nothing was saved"))]
    assert "KYC reference number</a>" in summary
    assert "*" not in summary


def test_form_explains_where_the_surname_goes(client: Client, alice: User, branch_a: Branch) -> None:
    client.force_login(alice)

    html = client.get(reverse("records:create")).content.decode()

    assert "no surname field" in html
