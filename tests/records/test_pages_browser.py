"""The records list and the checker's queue in headless Chromium, driven by the keyboard."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from institutions.models import Branch, Institution, User
from records import services
from records.models import KycRecord, Status
from tests.browser.conftest import browser_type_launch_args, log_in, plain_static_files
from tests.conftest import new_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser_type_launch_args", "plain_static_files"]  # fixtures, shared with tests/browser


def test_checker_ticks_the_whole_page_by_keyboard_and_approves_it(
    live_server: Any,
    page: Page,
    institution: Institution,
    branch_a: Branch,
    alice: User,
    bob: User,
    carol: User,
) -> None:
    records = [services.record_submit(actor=alice, record=new_record(alice, branch_a, n)) for n in (1, 2, 3)]
    log_in(page, live_server.url, bob)
    page.goto(f"{live_server.url}/records/review/")
    select_all = page.get_by_role("checkbox", name="Select every record on this page")
    expect(select_all).to_be_visible()
    services.record_approve(actor=carol, record=records[2])  # carol decides one while bob reads the page

    select_all.focus()
    page.keyboard.press("Space")
    expect(page.locator("#picked-count")).to_have_text("3 records ticked:")
    page.get_by_role("button", name="Approve ticked records").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_text("2 of 3 records approved.")).to_be_visible()
    expect(page.get_by_role("heading", name="What your last decision did")).to_be_visible()
    expect(page.get_by_text("Skipped: changed meanwhile")).to_be_visible()
    assert [KycRecord.objects.get(pk=r.pk).status for r in records] == [Status.APPROVED] * 3


def test_list_search_and_filters_work_from_the_keyboard(
    live_server: Any, page: Page, institution: Institution, branch_a: Branch, alice: User
) -> None:
    wanted = new_record(alice, branch_a, 1, applicant_first_name="ANITA", applicant_middle_name="")
    new_record(alice, branch_a, 2, applicant_first_name="RAVI", applicant_middle_name="")
    log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/records/")

    page.get_by_label("Search", exact=True).fill("anita")
    page.keyboard.press("Enter")

    rows = page.locator("table.record-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(wanted.kyc_ref_no)
    expect(page.get_by_role("status").filter(has_text="record")).to_contain_text("(as a name, whole words)")


def test_tab_reaches_the_queues_records_before_the_decision_buttons(
    live_server: Any, page: Page, institution: Institution, branch_a: Branch, alice: User, bob: User
) -> None:
    services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    log_in(page, live_server.url, bob)
    page.goto(f"{live_server.url}/records/review/")

    page.get_by_role("button", name="Filter").focus()
    reached: list[str] = []
    for _ in range(6):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "document.activeElement.getAttribute('aria-label') || document.activeElement.textContent"
            )
        )

    assert reached[0] == "Select every record on this page"
    approve = reached.index("Approve ticked records")
    assert any(label.startswith("Select REF-") for label in reached[:approve])
