"""accounts.network.client_ip: the address log-in throttling keys on, behind 0..N trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from accounts.network import client_ip


def request(remote: str = "10.0.0.9", forwarded: str | None = None) -> object:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_a_forwarded_header_is_ignored(settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 0

    assert client_ip(request("10.0.0.9", "203.0.113.7")) == "10.0.0.9"  # type: ignore[arg-type]


def test_behind_one_proxy_the_address_it_saw_is_used(settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1

    assert client_ip(request("10.0.0.9", "203.0.113.7")) == "203.0.113.7"  # type: ignore[arg-type]


def test_behind_one_proxy_entries_the_client_wrote_are_ignored(settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1

    # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the address it really saw.
    assert client_ip(request("10.0.0.9", "1.2.3.4, 203.0.113.7")) == "203.0.113.7"  # type: ignore[arg-type]


def test_behind_two_proxies_the_outer_proxy_entry_is_used(settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 2

    address = client_ip(request("10.0.0.9", "1.2.3.4, 203.0.113.7, 10.0.0.5"))  # type: ignore[arg-type]

    assert address == "203.0.113.7"


@pytest.mark.parametrize("forwarded", ["", "not-an-address", "203.0.113.7"])
def test_a_header_that_did_not_pass_every_proxy_falls_back_to_the_peer(settings: Any, forwarded: str) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 2 if forwarded == "203.0.113.7" else 1

    assert client_ip(request("10.0.0.9", forwarded)) == "10.0.0.9"  # type: ignore[arg-type]


def test_an_ipv6_address_is_normalised(settings: Any) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1

    assert client_ip(request("10.0.0.9", "2001:DB8::0:1")) == "2001:db8::1"  # type: ignore[arg-type]
