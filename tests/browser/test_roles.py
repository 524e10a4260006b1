"""One journey per role in headless Chromium, the forbidden moves included: a maker enters and submits, a
checker approves or returns (and the maker is notified), a maker cannot approve, a checker of branch A
cannot open branch B's record, an auditor changes nothing, an admin manages a branch and a user.

Screenshots of the pages (desktop and phone width) land in .local/test/screenshots for people to look at.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from institutions.models import AuditEvent, Branch, Institution, Role, User
from records import services as record_services
from records.models import KycRecord, Status
from reports import services as report_services
from tests.browser.conftest import log_in
from tests.browser.test_journey import fill_record
from tests.conftest import approved_record, make_user, new_record
from tests.records.factories import valid_record
from uploads.models import BatchItem, BatchStatus, UploadBatch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# Forms that change something. The log-out form and GET filter forms are not among them.
CHANGING_FORMS = "form[method=post]:not([action='/accounts/logout/'])"


def shoot_both(page: Page, shoot: Any, name: str) -> None:
    shoot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    shoot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def post_from_page(page: Page, path: str, fields: dict[str, str] | None = None) -> None:
    """A hand-made POST carrying the page's CSRF token, as someone crafting one would send it."""
    page.evaluate(
        """([path, fields]) => { const f = document.createElement('form'); f.method = 'post'; f.action = path;
        const t = document.querySelector('[name=csrfmiddlewaretoken]').cloneNode(); f.appendChild(t);
        for (const [k, v] of Object.entries(fields)) { const i = document.createElement('input');
          i.name = k; i.value = v; f.appendChild(i); }
        document.body.appendChild(f); f.submit(); }""",
        [path, fields or {}],
    )


def test_maker_submits_checker_decides_and_maker_is_notified(
    live_server: Any,
    page: Page,
    shoot: Any,
    institution: Institution,
    branch_a: Branch,
    alice: User,
    bob: User,
    carol: User,
) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # The maker enters two records and submits them.
    log_in(page, base, alice)
    for ref in ("ROLE-0001", "ROLE-0002"):
        page.goto(f"{base}/records/new/")
        data = valid_record()
        data.update(kyc_ref_no=ref, current_address_same_as_poa_address="Y")
        fill_record(page, data)
        page.get_by_role("button", name="Save and submit for review").click()
        expect(page.get_by_text(f"Record {ref} was submitted for review.")).to_be_visible()
    expect(page.get_by_role("button", name="Approve for upload")).to_have_count(0)

    # The checker approves one and returns the other with a reason.
    log_in(page, base, bob)
    page.get_by_role("link", name=re.compile("Review queue")).first.click()
    page.get_by_role("link", name="ROLE-0001").click()
    page.get_by_role("button", name="Approve for upload").click()
    expect(page.get_by_text("Record ROLE-0001 was approved and will be uploaded.")).to_be_visible()
    page.goto(f"{base}/records/{KycRecord.objects.get(kyc_ref_no='ROLE-0002').pk}/")
    page.get_by_label(re.compile("Reason", re.IGNORECASE)).first.fill("Proof of address is unreadable")
    page.get_by_role("button", name="Return to maker").click()
    expect(page.get_by_text("Record ROLE-0002 was returned to its maker.")).to_be_visible()
    assert KycRecord.objects.get(kyc_ref_no="ROLE-0001").status == Status.APPROVED
    assert KycRecord.objects.get(kyc_ref_no="ROLE-0002").status == Status.RETURNED

    # The periodic job turns the return into a notification; the maker sees the bell and reads it.
    report_services.notifications_derive()
    log_in(page, base, alice)
    bell = page.get_by_role("link", name=re.compile("Notifications"))
    expect(bell).to_contain_text("1")
    bell.click()
    expect(page.get_by_role("heading", name=re.compile("ROLE-0002 was returned by bob"))).to_be_visible()
    expect(page.get_by_text("Proof of address is unreadable")).to_be_visible()
    shoot_both(page, shoot, "roles-01-maker-notifications")
    page.get_by_role("button", name=re.compile("Mark read")).click()
    expect(page.get_by_role("button", name=re.compile("Mark read"))).to_have_count(0)


def test_maker_cannot_approve_a_colleagues_record(
    live_server: Any, page: Page, institution: Institution, branch_a: Branch, alice: User
) -> None:
    colleague = make_user("amit", Role.MAKER, branch_a)
    record = record_services.record_submit(actor=colleague, record=new_record(colleague, branch_a))
    log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/records/{record.pk}/")
    expect(page.get_by_role("button", name="Approve for upload")).to_have_count(0)
    expect(page.get_by_role("button", name="Return to maker")).to_have_count(0)
    post_from_page(page, f"/records/{record.pk}/approve/")
    expect(page.get_by_text("Only branch managers (checkers) approve or return records.")).to_be_visible()
    assert KycRecord.objects.get(pk=record.pk).status == Status.SUBMITTED


def test_checker_of_branch_a_cannot_open_branch_b_by_url(
    live_server: Any,
    page: Page,
    institution: Institution,
    branch_a: Branch,
    branch_b: Branch,
    bob: User,
    mallory: User,
) -> None:
    other = record_services.record_submit(actor=mallory, record=new_record(mallory, branch_b))
    batch = UploadBatch.objects.create(institution=institution, branch=branch_b)
    log_in(page, live_server.url, bob)
    for path in (f"/records/{other.pk}/", f"/batches/{batch.pk}/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 404, path
    # Nor act on it: a crafted approval is not found either, and nothing changes.
    page.goto(f"{live_server.url}/records/")
    post_from_page(page, f"/records/{other.pk}/approve/")
    page.wait_for_load_state()
    assert KycRecord.objects.get(pk=other.pk).status == Status.SUBMITTED
    expect(page.get_by_text(f"{other.kyc_ref_no}")).to_have_count(0)


def test_auditor_reads_everything_and_changes_nothing(
    live_server: Any,
    page: Page,
    shoot: Any,
    institution: Institution,
    branch_a: Branch,
    branch_b: Branch,
    alice: User,
    bob: User,
    mallory: User,
) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    waiting = record_services.record_submit(actor=mallory, record=new_record(mallory, branch_b, 1))
    done = [approved_record(alice, bob, branch_a, n) for n in (2, 3, 4)]
    batch = UploadBatch.objects.create(
        institution=institution, branch=branch_a, status=BatchStatus.ACCEPTED, record_count=3
    )
    for n, record in enumerate(done):
        BatchItem.objects.create(batch=batch, record=record, position=n, outcome="accepted")
    auditor = make_user("audrey", Role.AUDITOR)

    log_in(page, base, auditor)
    expect(page.get_by_text("waiting for review", exact=True)).to_be_visible()
    expect(page.locator(CHANGING_FORMS)).to_have_count(0)
    shoot_both(page, shoot, "roles-02-auditor-dashboard")
    for path in ("/records/", f"/records/{waiting.pk}/", f"/batches/{batch.pk}/", "/reports/audit/"):
        page.goto(f"{base}{path}")
        expect(page.locator(CHANGING_FORMS)).to_have_count(0)
    expect(page.get_by_role("link", name=f"Record {waiting.kyc_ref_no}").first).to_be_visible()
    shoot_both(page, shoot, "roles-03-audit-log")
    # The configuration too, read-only: the institution, its branches and users, with no form to change them.
    for link, text in (("Institution", institution.fi_code), ("Branches", "BRB"), ("Users", "mallory")):
        page.get_by_role("link", name=link, exact=True).first.click()
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
        expect(page.locator(CHANGING_FORMS)).to_have_count(0)
    shoot_both(page, shoot, "roles-03b-auditor-users")

    # Crafted changes are refused, and nothing moves.
    for path, fields in (
        (f"/records/{waiting.pk}/approve/", {}),
        (f"/records/{waiting.pk}/return/", {"reason": "x"}),
        ("/records/new/", {"kyc_ref_no": "AUD-1"}),
        (f"/batches/{batch.pk}/cancel/", {}),
        ("/settings/users/new/", {"username": "sneaky"}),
        ("/settings/institution/", {"name": "Sneaky Bank"}),
    ):
        page.goto(f"{base}/reports/notifications/")
        with page.expect_response(lambda r, p=path: r.url.endswith(p)) as info:
            post_from_page(page, path, fields)
        assert info.value.status == 403, path
        expect(page.get_by_role("heading", name="You are not allowed to do this")).to_be_visible()
    assert KycRecord.objects.get(pk=waiting.pk).status == Status.SUBMITTED
    assert not KycRecord.objects.filter(kyc_ref_no="AUD-1").exists()
    assert not User.objects.filter(username="sneaky").exists()


def test_admin_manages_a_branch_and_a_user(
    live_server: Any,
    page: Page,
    shoot: Any,
    institution: Institution,
    branch_a: Branch,
    alice: User,
    erin: User,
) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    log_in(page, base, erin)

    # A new branch.
    page.get_by_role("link", name="Branches").click()
    page.get_by_role("link", name="New branch").click()
    page.get_by_label("CERSAI branch code").fill("PUN01")
    page.get_by_label("Name").fill("Pune Camp")
    page.get_by_label("Reason").fill("Pune Camp opens in December")
    page.get_by_role("button", name="Save branch").click()
    expect(page.get_by_text("Branch PUN01 was created.")).to_be_visible()
    shoot_both(page, shoot, "roles-04-admin-branches")

    # A new checker for it.
    page.get_by_role("link", name="Users").first.click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Username").fill("priya")
    page.get_by_label("Email").fill("priya@example.com")
    page.get_by_label("Role").select_option("checker")
    page.get_by_label(re.compile("PUN01")).check()
    page.locator("#id_password1").fill("lotus-harbour-quill-5521")
    page.locator("#id_password2").fill("lotus-harbour-quill-5521")
    page.get_by_label("Reason").fill("Branch manager of Pune Camp")
    shoot_both(page, shoot, "roles-05-admin-new-user")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_text("User priya was created.")).to_be_visible()
    priya = User.objects.get(username="priya")
    assert priya.role == Role.CHECKER
    assert list(priya.branches.values_list("code", flat=True)) == ["PUN01"]

    # Moves alice to the new branch too (a reason is asked for), then deactivates her.
    page.goto(f"{base}/settings/users/{alice.pk}/")
    page.get_by_label(re.compile("PUN01")).check()
    page.get_by_role("button", name="Save user").click()
    expect(page.get_by_text("Say why the role or branches change")).to_be_visible()
    page.get_by_label(re.compile("PUN01")).check()
    page.get_by_label("Reason", exact=True).first.fill("Covers Pune from December")
    page.get_by_role("button", name="Save user").click()
    expect(page.get_by_text("User alice was saved.")).to_be_visible()
    page.goto(f"{base}/settings/users/{alice.pk}/")
    shoot_both(page, shoot, "roles-06-admin-user")
    page.locator("#active-reason").fill("Left the bank")
    page.get_by_role("button", name="Deactivate user").click()
    expect(page.get_by_text("User alice was deactivated.")).to_be_visible()
    alice.refresh_from_db()
    assert not alice.is_active
    assert set(alice.branches.values_list("code", flat=True)) == {"BRA", "PUN01"}

    # Every change is in the audit log, with old and new values.
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_text("Branches: BRA → BRA, PUN01")).to_be_visible()
    expect(page.get_by_text("Left the bank")).to_be_visible()
    expect(page.get_by_text("Branch manager of Pune Camp")).to_be_visible()  # creations say why too
    # On a phone: the users page does not scroll sideways, and the log breaks no word in two.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/settings/users/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto(f"{base}/reports/audit/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    lines = page.evaluate(
        """() => [...document.querySelectorAll('.audit-table td')]
            .filter(td => td.textContent.trim() === 'User created')
            .map(td => { const r = document.createRange(); r.selectNodeContents(td);
                         return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; })"""
    )
    assert lines and max(lines) == 1, lines
    page.set_viewport_size(DESKTOP)
    assert (
        AuditEvent.objects.filter(action__in=["branch_created", "user_created", "user_updated"]).count() == 3
    )
    # The admin edits no KYC data: no "New record" link, and the form is refused.
    expect(page.get_by_role("link", name="New record")).to_have_count(0)
    response = page.goto(f"{base}/records/new/")
    assert response is not None and response.status == 403
