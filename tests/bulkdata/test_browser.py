"""The import flow as a maker uses it in Chromium: template, upload, preview of every problem, import of
the valid rows, the error file (live server, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from institutions.models import Branch, User
from records.models import KycRecord
from tests.browser import conftest as browser
from tests.bulkdata.helpers import csv_bytes, rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The browser tests' Chromium settings, static files and screenshots, for this module only.
browser_type_launch_args = browser.browser_type_launch_args
plain_static_files = browser.plain_static_files
shoot = browser.shoot


def test_maker_uploads_previews_and_imports_the_valid_rows(
    live_server: Any, page: Page, shoot: Any, alice: User, branch_a: Branch
) -> None:
    records = rows(3, prefix="WEB")
    records[1]["pan"] = "ABCDE1234F"
    records[2]["poa_pin_code"] = "0400"
    browser.log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/data/imports/")
    expect(page.get_by_role("heading", name="Import records")).to_be_visible()
    expect(page.get_by_role("link", name="Download CSV template")).to_be_visible()
    page.get_by_label("File of records").set_input_files(
        {"name": "records.csv", "mimeType": "text/csv", "buffer": csv_bytes(records)}
    )
    page.get_by_label("Branch").select_option(label=str(branch_a))
    shoot(page, "bulk-01-upload")
    page.get_by_role("button", name="Upload and check").click()

    expect(page.get_by_role("heading", name="Import of records.csv")).to_be_visible()
    table = page.get_by_role("table")
    # One error in each of two rows (warnings may come too: a transactional test has no PIN master).
    expect(table.get_by_role("row").filter(has_text="error")).to_have_count(2)
    expect(table).to_contain_text("PAN must be")
    expect(table).to_contain_text("poa_pin_code")
    expect(page.locator("#rows-invalid")).to_have_text("2")
    assert not KycRecord.objects.exists()
    shoot(page, "bulk-02-preview")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the 2 invalid rows with their errors").click()
    assert download.value.suggested_filename == "records-errors.csv"

    page.get_by_role("button", name="Import the 1 valid record only").click()
    expect(page.get_by_text("1 record imported.")).to_be_visible()
    expect(page.locator("#records-created")).to_have_text("1")
    shoot(page, "bulk-03-imported")
    assert list(KycRecord.objects.values_list("kyc_ref_no", flat=True)) == ["WEB-00001"]

    # The records list offers the export, with the list's filters, and the import.
    page.goto(f"{live_server.url}/records/")
    page.get_by_role("button", name="Export").click()
    expect(page.get_by_role("link", name="CSV, personal data masked")).to_be_visible()
    expect(page.get_by_role("link", name="Import from a file")).to_be_visible()
    shoot(page, "bulk-04-records-export-menu")
