"""Log-in throttling across addresses: 20 failures of one username from any
addresses lock that username everywhere, never an address, so one proxy's users are not locked together."""

from __future__ import annotations

from typing import Any

from django.test import Client

from institutions.models import User
from tests.accounts.test_throttling import WRONG, log_in
from tests.conftest import PASSWORD


def spread_failures(client: Client, username: str, times: int, **extra: str) -> None:
    """One failure from each of ``times`` addresses: never the pair's limit of 5."""
    for n in range(times):
        log_in(client, username, WRONG, f"10.9.{n // 200}.{n % 200 + 1}", **extra)


def test_nineteen_failures_from_as_many_addresses_still_allow_the_right_password(
    client: Client, alice: User
) -> None:
    spread_failures(client, "alice", 19)

    log_in(client, "alice", PASSWORD, "10.2.2.2")

    assert client.session.get("_auth_user_id") == str(alice.pk)


def test_twenty_failures_from_as_many_addresses_lock_the_username_everywhere(
    client: Client, alice: User
) -> None:
    spread_failures(client, "alice", 20)

    status = log_in(client, "alice", PASSWORD, "10.2.2.2")

    assert (status, client.session.get("_auth_user_id")) == (429, None)


def test_username_lock_says_both_limits(client: Client, alice: User) -> None:
    spread_failures(client, "alice", 20)

    response = Client().post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.2.2.2"
    )

    assert "5 in a row from your address, or\n    20 from anywhere" in response.content.decode()


def test_username_lock_does_not_reach_other_users_at_the_same_addresses(
    client: Client, alice: User, mallory: User
) -> None:
    spread_failures(client, "alice", 20)

    log_in(client, "mallory", PASSWORD, "10.9.0.1")  # an address every guess came from

    assert client.session.get("_auth_user_id") == str(mallory.pk)


def test_behind_a_trusted_proxy_a_username_lock_leaves_the_proxys_other_users_in(
    client: Client, alice: User, mallory: User, settings: Any
) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    for n in range(20):
        log_in(client, "alice", WRONG, "10.0.0.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")

    locked = log_in(client, "alice", PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    log_in(client, "mallory", PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1")

    assert locked == 429 and client.session.get("_auth_user_id") == str(mallory.pk)


def test_the_real_users_log_in_does_not_wipe_the_guesses_made_elsewhere(client: Client, alice: User) -> None:
    spread_failures(client, "alice", 19)
    Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.2.2.2")
    log_in(client, "alice", WRONG, "10.8.8.8")

    status = log_in(Client(), "alice", PASSWORD, "10.2.2.2")

    assert status == 429


def test_the_limit_is_a_setting(client: Client, alice: User, settings: Any) -> None:
    settings.PORTAL_LOGIN_USERNAME_FAILURE_LIMIT = 8
    spread_failures(client, "alice", 8)

    status = log_in(client, "alice", PASSWORD, "10.2.2.2")

    assert status == 429
