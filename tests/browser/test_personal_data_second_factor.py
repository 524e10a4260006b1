"""A maker without an authenticator who reveals a record is sent to set one up, then comes back to the
record and reveals it."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from institutions.models import Branch, User
from records.models import RecordEvent
from tests.browser.conftest import log_in
from tests.conftest import new_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_maker_sets_up_two_factor_on_the_way_to_a_reveal(
    live_server: Any, page: Page, shoot: Any, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, 1)
    log_in(page, live_server.url, alice)  # a maker logs in with the password alone
    page.goto(f"{live_server.url}/records/{record.pk}/")
    expect(page.get_by_text("XXXXXX234F").first).to_be_visible()

    page.get_by_role("button", name="Reveal personal data").click()

    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.get_by_text("Personal data in clear needs two-factor authentication")).to_be_visible()
    assert not RecordEvent.objects.filter(action=RecordEvent.Action.REVEALED).exists()
    shoot(page, "pii-two-factor-enrolment")
    secret = page.locator("code").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(f"{totp(base64.b32decode(secret)):06d}")
    page.get_by_role("button", name="Confirm and turn on").click()

    expect(page.get_by_role("button", name="Reveal personal data")).to_be_visible()  # back on the record
    page.get_by_role("button", name="Reveal personal data").click()
    expect(page.get_by_text("ABCPE1234F").first).to_be_visible()
    assert RecordEvent.objects.filter(action=RecordEvent.Action.REVEALED).count() == 1
