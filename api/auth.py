"""Bearer-token authentication of API clients, with the rate limit applied to every authenticated call.

A token is looked up by its SHA-256 (one indexed probe); unknown, revoked and expired tokens are refused
alike to the caller (401), and told apart only in the audit log. ``last_used_at`` is written at most once a
minute per client, so a busy client does not turn every request into an UPDATE.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from .audit import refusal_audit
from .errors import RateLimited, Unauthorized
from .limits import rate_limit_check
from .models import ApiClient
from .tokens import token_hash

_LAST_USED_RESOLUTION = timedelta(minutes=1)


def client_authenticate(token: str) -> ApiClient:
    """The active client whose token this is; raises Unauthorized (and audits why) otherwise."""
    client = (
        ApiClient.objects.select_related("user", "institution").filter(token_hash=token_hash(token)).first()
    )
    now = timezone.now()
    if client is None:
        refusal_audit(client=None, status=401, reason="unknown token")
        raise Unauthorized(detail="Unknown token")
    if client.revoked_at is not None:
        refusal_audit(client=client, status=401, reason="revoked token")
        raise Unauthorized(detail="Token revoked")
    if client.token_expires_at is not None and client.token_expires_at <= now:
        refusal_audit(client=client, status=401, reason="expired token")
        raise Unauthorized(detail="Token expired")
    if client.last_used_at is None or now - client.last_used_at >= _LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


class ClientBearer(HttpBearer):
    """``Authorization: Bearer <token>`` naming an active ApiClient; sets ``request.auth`` to it."""

    def __call__(self, request: HttpRequest) -> Any:
        client = super().__call__(request)
        if client is None:  # no Authorization header, or not a Bearer one
            refusal_audit(client=None, status=401, reason="no token")
            raise Unauthorized(detail="No bearer token")
        return client

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient:
        client = client_authenticate(token)
        try:
            rate_limit_check(client=client)
        except RateLimited:
            refusal_audit(client=client, status=429, reason="rate limit")
            raise
        return client
