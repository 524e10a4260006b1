"""An administrator creates an API client on its page and sees the token once; the records sent as that
client reach a checker's review queue, and the client can never be the one who approves them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from api.models import ApiClient
from api.tokens import token_hash
from institutions.models import Branch, Institution, User
from tests.api.factories import record_object
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}


def send_as(base: str, token: str, branch: Branch, refs: list[str]) -> None:
    """The bank's system sends records with the token the admin copied: POST /api/v1/records/."""
    body = {
        "branch_code": branch.code,
        "records": [record_object(n, kyc_ref_no=ref) for n, ref in enumerate(refs)],
    }
    response = requests.post(
        f"{base}/api/v1/records/", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 201, response.text
    assert [item["status"] for item in response.json()["records"]] == ["submitted"] * len(refs)


def test_admin_creates_a_client_sees_the_token_once_and_its_records_reach_review(
    live_server: Any,
    page: Page,
    shoot: Any,
    institution: Institution,
    branch_a: Branch,
    erin: User,
    bob: User,
) -> None:
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    log_in(page, base, erin)
    page.get_by_role("link", name="API clients").first.click()
    expect(page.get_by_role("heading", name="API clients")).to_be_visible()
    page.get_by_role("link", name="New API client").click()
    page.get_by_label("Name").fill("core-banking")
    page.get_by_label(re.compile("BRA")).check()
    page.get_by_label("Send records straight to review").check()
    page.get_by_role("button", name="Create client").click()

    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    token = page.get_by_label(re.compile("copy it into")).input_value()
    shoot(page, "api-client-token-shown-once")
    client = ApiClient.objects.get(name="core-banking")
    assert client.token_hash == token_hash(token) and client.submit_on_arrival
    assert token not in page.url

    page.get_by_role("link", name=re.compile("I have copied it")).click()
    expect(page.get_by_role("heading", name="API client core-banking")).to_be_visible()
    assert token not in page.content()
    shoot(page, "api-client-detail")
    page.goto(f"{base}/settings/api-clients/")
    expect(page.get_by_role("cell", name="core-banking", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{client.token_prefix}…")).to_be_visible()
    assert token not in page.content()
    shoot(page, "api-client-list")

    send_as(base, token, branch_a, ["CBS-0001", "CBS-0002"])

    log_in(page, base, bob)
    page.get_by_role("link", name=re.compile("Review queue")).first.click()
    expect(page.get_by_role("link", name="CBS-0001")).to_be_visible()
    expect(page.get_by_role("link", name="CBS-0002")).to_be_visible()
    expect(page.get_by_text("api-core-banking").first).to_be_visible()
