"""CKYC validation where the portal uses it: the record form and services with the database's code book,
the PIN master, the institution's warnings setting, and the Aadhaar guard."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ckycportal.errors import ActionRefused
from codelists import services as codelist_services
from codelists.models import NameTitle, State
from institutions.models import Branch, Institution, User
from records import selectors, services
from records.forms import KycRecordForm, ReturnForm
from records.models import KycRecord
from records.validation import AADHAAR_IN_TEXT_MESSAGE, AADHAAR_MESSAGE, FIELD_LABELS
from tests.codelists.fixtures import ensure_code_lists_seeded
from tests.conftest import new_record

from .factories import valid_record
from .test_validation import AADHAAR
from .test_views import SUBMIT, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def code_lists_seeded(django_db_setup: None, django_db_blocker: Any) -> None:
    ensure_code_lists_seeded(django_db_blocker)


def post_form(branch: Branch, action: str = SUBMIT, **overrides: Any) -> KycRecordForm:
    form = KycRecordForm(form_data(branch, action, **overrides), branches=Branch.objects.all())
    form.is_valid()
    return form


# -- the PIN master --------------------------------------------------------------------------------------


def test_a_pin_of_another_state_is_refused_on_save_naming_the_pin_field(
    alice: User, branch_a: Branch
) -> None:
    with pytest.raises(services.RecordInvalid) as caught:
        new_record(alice, branch_a, poa_state="DL")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        (
            "poa_pin_code",
            "PIN code belongs to Maharashtra (MH), not to Delhi (DL): check the PIN code or the state",
        )
    ]
    assert not KycRecord.objects.exists()


def test_the_form_shows_the_pin_error_on_the_current_pin_field(branch_a: Branch) -> None:
    form = post_form(branch_a, current_state="DL")
    assert form.errors["current_pin_code"] == [
        "Current address PIN code belongs to Maharashtra (MH), not to Delhi (DL): check the PIN "
        "code or the current address state"
    ]


def test_import_problems_never_echo_the_pin(alice: User, branch_a: Branch) -> None:
    """A PIN is part of the customer's address: an import's problem list says what is wrong, not the value."""
    from bulkdata.engine import records_import
    from tests.bulkdata.helpers import csv_bytes, rows

    data = csv_bytes(rows(1, poa_state="DL") + rows(1, prefix="ABS", poa_pin_code="999999"))
    messages: list[str] = []
    records_import(
        actor=alice,
        branch=branch_a,
        opener=lambda: io.BytesIO(data),
        save=False,
        on_problems=lambda row, problems: messages.extend(p.message for p in problems),
    )
    assert any("belongs to Maharashtra" in message for message in messages)
    assert any("is not in the PIN master" in message for message in messages)
    assert not [message for message in messages if "400001" in message or "999999" in message]


def test_with_an_empty_pin_master_records_are_saved_with_a_warning(alice: User, branch_a: Branch) -> None:
    from codelists.models import PinCode

    PinCode.objects.all().delete()
    codelist_services.code_book_touch()
    record = new_record(alice, branch_a)
    assert services.record_submit(actor=alice, record=record).status == "submitted"
    form = post_form(branch_a, kyc_ref_no="REF-EMPTY-PIN")
    assert form.is_valid()
    assert {(w.field, w.severity) for w in form.warnings} == {
        ("poa_pin_code", "warning"),
        ("current_pin_code", "warning"),
    }


# -- warnings and the institution's setting -------------------------------------------------------------


TITLE_WARNING = "Title does not match gender: Mr is used for male applicants; Mrs, Ms and Miss for female"


def test_warnings_are_shown_but_do_not_block_by_default(branch_a: Branch) -> None:
    form = post_form(branch_a, applicant_name_title="MRS")
    assert form.is_valid(), form.errors
    assert [(w.field, w.message) for w in form.warnings] == [("applicant_name_title", TITLE_WARNING)]


def test_warnings_block_submission_when_the_institution_says_so(
    institution: Institution, branch_a: Branch
) -> None:
    institution.warnings_block = True
    institution.save()
    form = post_form(branch_a, applicant_name_title="MRS")
    assert form.errors["applicant_name_title"] == [TITLE_WARNING]
    draft = post_form(branch_a, "Save draft", applicant_name_title="MRS", kyc_ref_no="REF-DRAFT-W")
    assert draft.is_valid(), "a draft is not validated as complete: warnings never block it"


def test_the_service_blocks_warnings_only_for_a_complete_record_when_asked() -> None:
    data = valid_record() | {"applicant_name_title": "MRS"}
    assert services._clean(data, complete=True)["applicant_name_title"] == "MRS"
    assert services._clean(data, complete=False, warnings_block=True)["applicant_name_title"] == "MRS"
    with pytest.raises(services.RecordInvalid) as caught:
        services._clean(data, complete=True, warnings_block=True)
    assert [p.field for p in caught.value.problems] == ["applicant_name_title"]


# -- code lists in the form and on the record page ------------------------------------------------------


def title_choices(form: KycRecordForm) -> list[tuple[str, str]]:
    return list(form.fields["applicant_name_title"].widget.choices)  # type: ignore[attr-defined]


def test_an_inactive_code_is_not_offered_but_a_record_holding_it_keeps_it(
    alice: User, branch_a: Branch, erin: User
) -> None:
    record = new_record(alice, branch_a, applicant_name_title="MISS", gender="F")
    miss = NameTitle.objects.get(code="MISS")
    miss.is_active = False
    codelist_services.code_entry_save(actor=erin, entry=miss)

    assert "MISS" not in dict(title_choices(KycRecordForm(branches=Branch.objects.all())))
    kept = dict(title_choices(KycRecordForm(instance=record, branches=Branch.objects.all())))
    assert kept["MISS"] == "Miss (no longer in use)"
    # Kept for display, refused on the next save: the maker must choose another title.
    form = KycRecordForm(
        form_data(branch_a, SUBMIT, applicant_name_title="MISS", gender="F"),
        instance=record,
        branches=Branch.objects.all(),
    )
    assert form.errors["applicant_name_title"] == ["Title MISS (Miss) is not in use; choose another"]


def test_a_new_code_is_offered_and_accepted(alice: User, branch_a: Branch, erin: User) -> None:
    codelist_services.code_entry_save(actor=erin, entry=NameTitle(code="MX", label="Mx", sort_order=60))
    assert ("MX", "Mx") in title_choices(KycRecordForm(branches=Branch.objects.all()))
    assert new_record(alice, branch_a, applicant_name_title="MX").applicant_name_title == "MX"


def test_the_record_page_shows_labels_from_the_code_book(alice: User, branch_a: Branch, erin: User) -> None:
    record = new_record(alice, branch_a)
    mh = State.objects.get(code="MH")
    mh.label = "Maharashtra State"
    codelist_services.code_entry_save(actor=erin, entry=mh)
    rows = {
        row["name"]: row["value"]
        for section in selectors.record_sections(record, set(), reveal=True)
        for row in section["rows"]
    }
    assert rows["poa_state"] == "Maharashtra State"
    assert rows["poa_document"] == "Passport (02)"


# -- the Aadhaar guard ----------------------------------------------------------------------------------


def test_a_full_aadhaar_number_is_never_stored_only_the_last_4_digits(alice: User, branch_a: Branch) -> None:
    with pytest.raises(services.RecordInvalid) as caught:
        new_record(alice, branch_a, poa_document="01", poa_document_number=AADHAAR)
    assert [(p.field, p.message) for p in caught.value.problems] == [("poa_document_number", AADHAAR_MESSAGE)]
    assert not KycRecord.objects.exists()

    record = new_record(alice, branch_a, poa_document="01", poa_document_number=AADHAAR[-4:])
    record.refresh_from_db()
    assert record.poa_document_number == AADHAAR[-4:]


@pytest.mark.parametrize("field", ["poa_address_line_1", "kyc_verifier_name", "applicant_middle_name"])
def test_a_full_aadhaar_number_in_a_free_text_field_is_refused(
    alice: User, branch_a: Branch, field: str
) -> None:
    with pytest.raises(services.RecordInvalid) as caught:
        new_record(alice, branch_a, **{field: f"UID {AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}"})
    message = AADHAAR_IN_TEXT_MESSAGE.format(label=FIELD_LABELS[field])
    assert [(p.field, p.message) for p in caught.value.problems] == [(field, message)]


def test_the_form_refuses_a_full_aadhaar_number_and_never_echoes_it(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)
    response = client.post(
        reverse("records:create"), form_data(branch_a, SUBMIT, poa_document="01", poa_document_number=AADHAAR)
    )
    assert response.status_code == 200
    assert AADHAAR_MESSAGE in response.content.decode()
    assert AADHAAR not in response.content.decode()
    assert not KycRecord.objects.exists()


def test_a_return_reason_with_a_full_aadhaar_number_is_refused() -> None:
    form = ReturnForm({"reason": f"Aadhaar {AADHAAR} does not match the name"})
    assert not form.is_valid()
    assert form.errors["reason"] == [
        "The reason contains a full Aadhaar number: write at most its last 4 digits"
    ]
    assert AADHAAR not in str(form.data)
    assert ReturnForm({"reason": f"Aadhaar ending {AADHAAR[-4:]} does not match"}).is_valid()


# -- submission and approval use the same rules as the form ---------------------------------------------


def test_submission_is_refused_when_warnings_block_and_the_record_has_one(
    institution: Institution, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, applicant_name_title="MRS")  # a warning: saved as a draft
    institution.warnings_block = True
    institution.save()
    with pytest.raises(services.RecordInvalid) as caught:
        services.record_submit(actor=alice, record=record)
    assert [p.field for p in caught.value.problems] == ["applicant_name_title"]
    record.refresh_from_db()
    assert record.status == "draft"


def test_approval_checks_the_code_book_of_the_day(
    alice: User, bob: User, branch_a: Branch, erin: User
) -> None:
    record = services.record_submit(
        actor=alice, record=new_record(alice, branch_a, applicant_name_title="MR")
    )
    mr = NameTitle.objects.get(code="MR")
    mr.is_active = False
    codelist_services.code_entry_save(actor=erin, entry=mr)
    with pytest.raises(services.RecordInvalid) as caught:
        services.record_approve(actor=bob, record=record)
    # The applicant's and the relative's titles were both MR.
    assert [p.field for p in caught.value.problems] == ["applicant_name_title", "applicant_rel_name_title"]
    record.refresh_from_db()
    assert record.status == "submitted"


def test_the_service_refuses_a_return_reason_with_a_full_aadhaar_number(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    with pytest.raises(ActionRefused, match="full Aadhaar number"):
        services.record_return(actor=bob, record=record, reason=f"Aadhaar {AADHAAR} does not match")
    record.refresh_from_db()
    assert record.status == "submitted"
    assert not record.events.filter(reason__contains=AADHAAR).exists()


def test_the_checker_is_told_why_a_return_reason_was_refused(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    from tests.conftest import otp_login

    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    otp_login(client, bob)
    response = client.post(
        reverse("records:return", args=[record.pk]), {"reason": f"Aadhaar {AADHAAR} wrong"}, follow=True
    )
    assert "The reason contains a full Aadhaar number" in response.content.decode()
    assert AADHAAR not in response.content.decode()
    empty = client.post(reverse("records:return", args=[record.pk]), {"reason": ""}, follow=True)
    assert "Say why the record is returned" in empty.content.decode()


def test_the_form_takes_the_customers_existing_ckyc_number(alice: User, branch_a: Branch) -> None:
    form = post_form(branch_a, existing_ckyc_no="12345678901234")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["existing_ckyc_no"] == "12345678901234"


def test_a_full_aadhaar_number_in_an_address_is_wiped_and_the_message_says_so(
    client: Client, alice: User, branch_a: Branch
) -> None:
    client.force_login(alice)
    address = f"FLAT 4, UID {AADHAAR[:4]} {AADHAAR[4:8]} {AADHAAR[8:]}, MARINE DRIVE"
    response = client.post(reverse("records:create"), form_data(branch_a, SUBMIT, poa_address_line_1=address))
    html = response.content.decode()

    assert "Address line 1 looks like it contains an Aadhaar number" in html
    assert "The whole field was cleared" in html
    assert "MARINE DRIVE" not in html and AADHAAR[8:] not in html
    assert "last 4 digits of the Aadhaar number" not in html.split("Address line 1 looks like")[1][:200]
