"""Log-in throttling (django-axes): 5 failures lock that username from that address for 15 minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import User
from tests.conftest import PASSWORD

WRONG = "not-the-password"


def log_in(client: Client, username: str, password: str, address: str = "10.1.1.1", **extra: str) -> int:
    response = client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )
    return response.status_code


def fail(client: Client, username: str, times: int, address: str = "10.1.1.1", **extra: str) -> None:
    for _ in range(times):
        log_in(client, username, WRONG, address, **extra)


def test_four_failures_still_allow_the_right_password(client: Client, alice: User) -> None:
    fail(client, "alice", 4)

    log_in(client, "alice", PASSWORD)

    assert client.session.get("_auth_user_id") == str(alice.pk)


def test_five_failures_refuse_even_the_right_password(client: Client, alice: User) -> None:
    fail(client, "alice", 5)

    status = log_in(client, "alice", PASSWORD)

    assert (status, client.session.get("_auth_user_id")) == (429, None)


def test_lockout_page_says_why_and_for_how_long(client: Client, alice: User) -> None:
    fail(client, "alice", 5)

    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1"
    )

    text = response.content.decode()
    assert "Too many failed log-ins" in text and "15 minutes" in text


def test_lockout_does_not_reach_the_same_username_from_another_address(client: Client, alice: User) -> None:
    fail(client, "alice", 5, address="10.1.1.1")

    log_in(client, "alice", PASSWORD, address="10.2.2.2")

    assert client.session.get("_auth_user_id") == str(alice.pk)


def test_lockout_does_not_reach_another_username_from_the_same_address(
    client: Client, alice: User, mallory: User
) -> None:
    fail(client, "alice", 5)

    log_in(client, "mallory", PASSWORD)

    assert client.session.get("_auth_user_id") == str(mallory.pk)


def test_lockout_ends_after_fifteen_minutes(client: Client, alice: User) -> None:
    fail(client, "alice", 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    log_in(client, "alice", PASSWORD)

    assert client.session.get("_auth_user_id") == str(alice.pk)


def test_behind_a_trusted_proxy_the_forwarded_address_is_locked(
    client: Client, alice: User, settings: Any
) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    fail(client, "alice", 5, address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    status = log_in(client, "alice", PASSWORD, address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert status == 429


def test_behind_a_trusted_proxy_other_clients_of_the_proxy_are_not_locked(
    client: Client, alice: User, settings: Any
) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    fail(client, "alice", 5, address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    log_in(client, "alice", PASSWORD, address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert client.session.get("_auth_user_id") == str(alice.pk)


def test_a_forged_forwarded_header_does_not_escape_the_lockout(client: Client, alice: User) -> None:
    fail(client, "alice", 5, address="10.1.1.1")  # no trusted proxy: the header is the client's own words

    status = log_in(client, "alice", PASSWORD, address="10.1.1.1", HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert status == 429
