"""The end-to-end slice as people use it: admin configures, maker enters and submits, checker approves,
the worker uploads, and the record shows as accepted (Chromium, live server, worker, Redis, PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from institutions.models import Branch, Institution, Role, User
from kwikid_standin.server import StandIn
from records.models import KycRecord, Status
from tests.browser.conftest import log_in
from tests.conftest import TOKEN, make_user, new_record, wait_for
from tests.records.factories import valid_record

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def fill_record(page: Page, data: dict[str, Any]) -> None:
    for name, value in data.items():
        field = page.locator(f"[name={name}]")
        tag = field.evaluate("el => el.tagName.toLowerCase() + ':' + (el.type || '')")
        if not field.is_visible():
            continue  # a part the form hides (current address when "same as POA", disability details)
        if tag.startswith("select"):
            field.select_option(str(value))
        elif tag.endswith("checkbox"):
            field.set_checked(bool(value))
        elif value is None or value == "":
            continue
        else:
            field.fill(value.isoformat() if hasattr(value, "isoformat") else str(value))


def test_record_goes_from_entry_to_kwikid_and_shows_as_uploaded(
    live_server: Any,
    page: Page,
    shoot: Any,
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    institution: Institution,
    branch_a: Branch,
    alice: User,
    bob: User,
    erin: User,
) -> None:
    base = live_server.url
    Institution.objects.update(api_token="", api_base_url="http://127.0.0.1:9")  # not yet configured

    # Admin configures the KwikID connection on the portal's own page.
    log_in(page, base, erin)
    page.get_by_role("link", name="Institution").click()
    page.get_by_label("KwikID base URL").fill(kwikid.url)
    page.get_by_label("Replace KwikID bearer token").fill(TOKEN)
    page.get_by_label("Reason for the change").fill("KwikID connection for go-live")
    shoot(page, "01-institution-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("applies when another administrator approves it")).to_be_visible()
    assert TOKEN not in page.content()

    # Four eyes: a second administrator approves the endpoint and token.
    log_in(page, base, make_user("frank", Role.ADMIN))
    page.get_by_role("link", name="Institution").click()
    expect(page.get_by_text("KwikID connection for go-live")).to_be_visible()
    page.get_by_role("button", name="Approve and apply").click()
    expect(page.get_by_text("The change was approved and is in use now.")).to_be_visible()
    expect(page.get_by_text(TOKEN[-4:])).to_be_visible()
    assert TOKEN not in page.content()

    # Maker enters the record with the current address "same as POA" and submits it.
    log_in(page, base, alice)
    page.get_by_role("link", name="New record").first.click()
    data = valid_record()
    data.update(kyc_ref_no="WEB-0001", current_address_same_as_poa_address="Y")
    fill_record(page, data)
    expect(page.locator("#current-address")).to_be_hidden()
    shoot(page, "02-maker-new-record")
    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.get_by_text("Record WEB-0001 was submitted for review.")).to_be_visible()
    expect(page.get_by_text("Waiting for review").first).to_be_visible()
    # The maker has no way to approve their own record.
    expect(page.get_by_role("button", name="Approve for upload")).to_have_count(0)

    # Checker approves it from the review queue.
    log_in(page, base, bob)
    page.get_by_role("link", name=re.compile("Review queue")).first.click()
    page.get_by_role("link", name="WEB-0001").click()
    shoot(page, "03-checker-review")
    page.get_by_role("button", name="Approve for upload").click()
    expect(page.get_by_text("Record WEB-0001 was approved and will be uploaded.")).to_be_visible()

    # "Send approved now": the worker assembles the batch and KwikID (the stand-in) accepts it.
    page.get_by_role("link", name="Upload batches").click()
    page.get_by_role("button", name="Send approved now").click()
    record = KycRecord.objects.get(kyc_ref_no="WEB-0001")

    def uploaded() -> bool:
        return KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED

    wait_for(uploaded, timeout=90)
    page.goto(f"{base}/records/{record.pk}/")
    expect(page.locator("#registration").get_by_text("Accepted by KwikID")).to_be_visible()
    shoot(page, "04-record-uploaded")
    page.get_by_role("link", name=re.compile(r"Batch \d+")).first.click()
    expect(page.get_by_text("HTTP status")).to_be_visible()
    shoot(page, "05-batch-detail")
    assert KycRecord.objects.get(pk=record.pk).status == Status.UPLOADED
    assert kwikid.stats()["accepted"] == {"WEB-0001": 1}


def test_form_names_each_bad_field_and_saves_nothing(
    live_server: Any, page: Page, shoot: Any, institution: Institution, branch_a: Branch, alice: User
) -> None:
    log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/records/new/")
    data = valid_record()
    data.update(kyc_ref_no="BAD-0001", pan="ABC123", poa_pin_code="12", mobile_number="12345")
    fill_record(page, data)
    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    for field in ("pan", "poa_pin_code", "mobile_number"):
        expect(page.locator(f"#id_{field}")).to_have_class(re.compile("is-invalid"))
    shoot(page, "06-bad-input")
    assert not KycRecord.objects.exists()


def test_checker_of_another_branch_gets_not_found(
    live_server: Any, page: Page, institution: Institution, branch_a: Branch, alice: User, dave: User
) -> None:
    record = new_record(alice, branch_a)
    log_in(page, live_server.url, dave)
    response = page.goto(f"{live_server.url}/records/{record.pk}/")
    assert response is not None and response.status == 404


def test_maker_sees_a_refusal_when_posting_an_approval_of_their_own_record(
    live_server: Any, page: Page, institution: Institution, branch_a: Branch, alice: User, bob: User
) -> None:
    from records import services

    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/records/{record.pk}/")
    # No button is offered; a hand-made POST with the page's CSRF token is refused by the service.
    page.evaluate(
        """pk => { const f = document.createElement('form'); f.method = 'post';
        f.action = `/records/${pk}/approve/`;
        const t = document.querySelector('[name=csrfmiddlewaretoken]').cloneNode(); f.appendChild(t);
        document.body.appendChild(f); f.submit(); }""",
        record.pk,
    )
    expect(page.get_by_text("You cannot review a record you entered, edited or submitted")).to_be_visible()
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED
