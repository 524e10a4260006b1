"""The client's IP address as the portal sees it behind its configured reverse proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or with PORTAL_TRUSTED_PROXY_COUNT = N > 0 proxies in front, the address that the
    outermost proxy saw: the N-th entry of X-Forwarded-For from the right.

    Each proxy appends the address it was connected from, so entries further left were written by the
    client and are not trusted. A header shorter than N (a request that bypassed a proxy) or an entry
    that is not an IP address falls back to REMOTE_ADDR.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    count: int = settings.PORTAL_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < count:
        return remote
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
