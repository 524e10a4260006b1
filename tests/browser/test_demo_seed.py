"""make run's living demo in headless Chromium: after the seeding make run does on its first start, the demo
checker's dashboard has a non-zero figure in every chart and the review queue has records.

Screenshots of the pages land in .local/test/screenshots for people to look at.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from institutions.models import User
from records.models import Status
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.reports.test_seed_demo import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def numbers(page: Page, selector: str) -> list[int]:
    return [int(text.strip()) for text in page.locator(selector).all_inner_texts()]


def test_demo_checker_sees_a_living_dashboard_and_a_review_queue(
    live_server: Any, page: Page, shoot: Any, tmp_path: Path, settings: Any
) -> None:
    settings.DEBUG = True  # as under make run (the seed refuses without it)
    settings.DASHBOARD_CACHE_SECONDS = 0
    token = tmp_path / "token"
    token.write_text("demo-token-0123456789", encoding="utf-8")
    # What runlocal does on the first start of an empty portal: the demo's set-up, then its records.
    call_command(
        "setup_demo",
        api_base_url=f"http://127.0.0.1:{free_port()}",
        token_file=str(token),
        password=PASSWORD,
        stdout=StringIO(),
    )
    call_command("seed_demo", if_empty=True, stdout=StringIO())
    settings.DEBUG = False
    base = live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, base, User.objects.get(username="checker"))

    # Key figures: waiting for review, accepted today, the rejection rate, overdue (and due soon).
    kpis = page.locator(".kpi .kpi-value").all_inner_texts()
    assert len(kpis) == 4
    assert all(float(text.replace("%", "").strip()) > 0 for text in kpis), kpis
    due_soon = page.get_by_text(re.compile(r"due within \d+ days")).locator("strong")
    assert int(due_soon.inner_text()) > 0
    # Registration at CKYCR: registered, waiting for the registry, registered before upload.
    assert all(n > 0 for n in numbers(page, ".registration-card .kpi-value")), "registration"
    # The status chart and its table: a record in every status.
    status_rows = page.locator("#status-title ~ table tbody tr")
    expect(status_rows).to_have_count(len(Status.values))
    assert all(n > 0 for n in numbers(page, "#status-title ~ table tbody td.text-end"))
    expect(page.locator("#status-title ~ img.chart")).to_have_attribute("src", re.compile("^data:image/svg"))
    # KwikID's answers per day: accepted on many days, and a rejection.
    page.get_by_text("Numbers per day").click()
    accepted = numbers(page, "#daily-title ~ details tbody td:nth-child(2)")
    rejected = numbers(page, "#daily-title ~ details tbody td:nth-child(3)")
    assert sum(1 for n in accepted if n) >= 7 and sum(rejected) >= 1
    expect(page.locator("#daily-title ~ img.chart")).to_have_attribute("src", re.compile("^data:image/svg"))
    shoot(page, "demo-dashboard")

    queue = page.get_by_role("link", name=re.compile(r"Review queue \(\d+\)"))
    waiting = int(re.search(r"\((\d+)\)", queue.inner_text()).group(1))  # type: ignore[union-attr]
    assert waiting > 0
    queue.click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.locator("table.record-table tbody tr")).to_have_count(waiting)
    shoot(page, "demo-review-queue")
