"""The create_api_client command: the token printed once with how to use it, errors naming the option."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from api.models import ApiClient
from api.tokens import token_hash
from institutions.models import AuditEvent, Branch

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_api_client", *args, stdout=out)
    return out.getvalue()


def test_prints_the_token_once_with_the_bearer_header(branch_a: Branch, branch_b: Branch) -> None:
    output = run("core-banking", "--branch", "BRA", "--branch", "brb", "--submit")

    client = ApiClient.objects.get(name="core-banking")
    token = next(line.strip() for line in output.splitlines() if line.strip().startswith("ckyc_"))
    assert client.token_hash == token_hash(token)
    assert f"Authorization: Bearer {token}" in output
    assert "branches BRA, BRB" in output and "arrive for review" in output
    assert client.submit_on_arrival


def test_drafts_by_default_with_expiry_and_webhook_secret(branch_a: Branch) -> None:
    day = dt.date.today() + dt.timedelta(days=30)

    output = run(
        "cbs", "--branch", "BRA", "--expires", day.isoformat(), "--webhook-url", "https://cbs.example/h"
    )

    client = ApiClient.objects.get(name="cbs")
    assert not client.submit_on_arrival
    assert "arrive as drafts" in output
    assert client.token_expires_at is not None and client.token_expires_at.date() >= day
    assert client.webhook_secret and client.webhook_secret in output


def test_is_audited_as_done_by_the_command(branch_a: Branch) -> None:
    run("cbs", "--branch", "BRA")
    event = AuditEvent.objects.get(action="api_client_created")
    assert event.actor is None and event.detail["by_command"] is True


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["bad name", "--branch", "BRA"], "NAME:"),
        (["cbs", "--branch", "NOPE"], "--branch:"),
        (["cbs"], "--branch:"),
        (["cbs", "--branch", "BRA", "--expires", "2020-01-01"], "--expires:"),
        (["cbs", "--branch", "BRA", "--expires", "next week"], "--expires:"),
        (["cbs", "--branch", "BRA", "--webhook-url", "http://cbs.example/h"], "--webhook-url:"),
    ],
)
def test_errors_name_the_bad_option_and_create_nothing(
    branch_a: Branch, args: list[str], option: str
) -> None:
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert str(exc.value).startswith(option)
    assert not ApiClient.objects.exists()
