"""Registration at CKYCR in headless Chromium: a checker opens the reconciliation page, follows a figure to
the records list, finds a record by its KIN and sees the KIN on the record page.

Screenshots of the pages land in .local/test/screenshots for people to look at.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from institutions.models import Branch, Institution, User
from records.models import KycRecord
from tests.browser.conftest import log_in
from tests.conftest import new_record
from tests.records.registration import accepted, registered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KIN = "60012345678901"


def test_checker_follows_a_figure_to_the_list_finds_a_record_by_its_kin_and_opens_it(
    live_server: Any,
    page: Page,
    shoot: Any,
    institution: Institution,
    branch_a: Branch,
    alice: User,
    bob: User,
) -> None:
    today = timezone.localdate()

    def customer(n: int, *, verified_days_ago: int = 0) -> KycRecord:
        # Each a different customer (PAN), so that no duplicate warning crowds the record page.
        verified = today - timedelta(days=verified_days_ago)
        return new_record(alice, branch_a, n, pan=f"ABCPE{n:04d}F", kyc_verification_date=verified)

    registered(customer(1), KIN, days_ago=6)
    registered(customer(2), "60012345678902", preexisting=True)
    for n, days in ((3, 1), (4, 5), (5, 9)):
        accepted(customer(n), days_ago=days)
    accepted(customer(6, verified_days_ago=30), days_ago=14)
    base = live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, bob)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Registration").click()
    expect(page.get_by_role("heading", name="Registration at CKYCR")).to_be_visible()
    expect(page.locator("#bucket-waiting td").first).to_have_text("4")
    expect(page.locator("#bucket-waiting_over_10 td").first).to_have_text("1")
    expect(page.locator("#bucket-overdue td").first).to_have_text("1")
    shoot(page, "registration-reconciliation")

    # The 4-7 days figure lists exactly the record accepted five days ago.
    page.locator("#bucket-waiting_4_7 a").click()
    expect(page.get_by_role("heading", name="Records")).to_be_visible()
    expect(page.locator("table.record-table tbody tr")).to_have_count(1)
    expect(page.locator("table.record-table tbody")).to_contain_text("REF-BRA-000004")
    expect(page.get_by_label("Status")).to_have_value("uploaded")

    # The KIN, typed as people group it, finds its record exactly.
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("searchbox", name="Search").fill("6001 2345 6789 01")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page.locator("table.record-table tbody tr")).to_have_count(1)
    expect(page.get_by_role("status").filter(has_text="as a CKYC number (KIN), exactly")).to_be_visible()
    shoot(page, "registration-kin-search")
    page.get_by_role("link", name="REF-BRA-000001").click()

    expect(page.get_by_role("heading", name="Registered at CKYCR", exact=True)).to_be_visible()
    expect(page.locator("#kin")).to_have_text("XXXXXXXXXX8901")
    page.get_by_role("button", name="Reveal personal data").click()
    expect(page.locator("#kin")).to_have_text(KIN)
    shoot(page, "registration-record")
