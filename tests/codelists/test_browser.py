"""The Codes page and the import page's guidance in Chromium, wide and on a phone (live server)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from institutions.models import Branch, User
from tests.browser import conftest as browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

browser_type_launch_args = browser.browser_type_launch_args
plain_static_files = browser.plain_static_files
shoot = browser.shoot


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


@pytest.mark.parametrize("width", [1400, 390])
def test_maker_finds_a_code_from_the_record_form_and_the_import_page(
    live_server: Any, page: Page, shoot: Any, alice: User, branch_a: Branch, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    browser.log_in(page, live_server.url, alice)
    page.goto(f"{live_server.url}/data/imports/")
    expect(page.get_by_role("link", name="Codes", exact=True).last).to_have_attribute("href", "/codes/")
    expect(page.get_by_text("DD/MM/YYYY")).to_be_visible()
    no_sideways_scroll(page)
    shoot(page, f"codes-import-page-{width}")

    page.goto(f"{live_server.url}/codes/")
    expect(page.get_by_role("heading", name="Gender")).to_be_visible()
    no_sideways_scroll(page)
    shoot(page, f"codes-page-{width}")
    search = page.get_by_label("Search states and countries")
    search.fill("maha")
    search.press("Enter")
    states = page.locator("#codes-states")
    expect(states.get_by_role("listitem")).to_have_count(1)
    expect(states).to_contain_text("MH")
    expect(page.locator("#codes-countries")).to_contain_text("No countries match your search.")
    no_sideways_scroll(page)
    shoot(page, f"codes-page-search-{width}")
