"""Two-factor enrolment as a checker meets it: log in, scan or type the key, type the code, work."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from institutions.models import User
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_checker_without_a_device_enrols_and_lands_on_the_dashboard(
    live_server: Any, page: Page, shoot: Any, bob: User
) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    shoot(page, "10-two-factor-enrolment")
    # What a person types into an authenticator app: the key shown under the QR code.
    secret = page.locator("code").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(f"{totp(base64.b32decode(secret)):06d}")
    page.get_by_role("button", name="Confirm and turn on").click()

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Two-factor authentication is on")).to_be_visible()
    assert TOTPDevice.objects.get(user=bob).confirmed
    assert not [e for e in errors if "Content Security Policy" in e]


def test_checker_with_a_device_types_the_code_after_the_password(
    live_server: Any, page: Page, shoot: Any, bob: User
) -> None:
    log_in(page, live_server.url, bob)  # asserts the code page, then the dashboard

    expect(page.get_by_role("link", name="Review queue").first).to_be_visible()


def test_pages_raise_no_content_security_policy_violation(live_server: Any, page: Page, alice: User) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, live_server.url, alice)
    for path in ("/", "/records/", "/records/new/", "/accounts/password_change/"):
        page.goto(f"{live_server.url}{path}")

    assert [e for e in errors if "Content Security Policy" in e] == []
