"""Writes and reads of API clients: creation, token rotation and revocation, settings, the webhook secret.

Only administrators (or a management command, ``actor=None``) manage clients. Each write is one
transaction with one ``AuditEvent`` saying who did what to which client; a token or webhook secret is
returned to the caller once and never written to an event (only its first characters, the ``token_prefix``
the pages show anyway). Problems with what was typed are a ``ValidationError`` keyed by field, on purpose,
so the form puts each on its field; other refusals are ``ApiClientRefused``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ckycportal.errors import ActionRefused
from institutions.models import AuditEvent, Branch, Institution, Role, User

from .models import ApiClient, WebhookDelivery
from .tokens import new_token, token_hash, token_prefix

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
    "Use letters, digits and single hyphens only (for example core-banking).",
)
USERNAME_PREFIX = "api-"
WEBHOOK_SECRET_PREFIX = "whsec_"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DELIVERY_LOG_LENGTH = 50


class ApiClientRefused(ActionRefused):
    """A change to an API client that is not allowed (a revoked client, a non-administrator)."""


def _require_admin(actor: User | None) -> None:
    if actor is not None and actor.role != Role.ADMIN:
        raise ApiClientRefused("Only administrators manage API clients.")


def _institution(actor: User | None) -> Institution:
    """The actor's institution; for a management command, the portal's (one per deployment)."""
    branch = actor.branches.select_related("institution").order_by("pk").first() if actor else None
    institution = branch.institution if branch else Institution.objects.order_by("pk").first()
    if institution is None:
        raise ApiClientRefused("No institution is configured yet: configure it first.")
    return institution


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def expiry_end_of(day: dt.date) -> dt.datetime:
    """A token that "expires on" a day works through that day: it stops at the next local midnight."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def _check_name(name: str) -> list[str]:
    try:
        NAME_VALIDATOR(name)
    except ValidationError as exc:
        return list(exc.messages)
    problems = []
    if len(name) > ApiClient._meta.get_field("name").max_length:  # type: ignore[operator]
        problems.append("Use at most 60 characters.")
    if ApiClient.objects.filter(name__iexact=name).exists():
        problems.append(f"An API client named {name} already exists.")
    elif User.objects.filter(username__iexact=USERNAME_PREFIX + name).exists():
        problems.append(f"A user named {USERNAME_PREFIX}{name} already exists: choose another name.")
    return problems


def _branches(institution: Institution, codes: Iterable[str]) -> tuple[list[Branch], list[str]]:
    wanted = sorted({code.strip().upper() for code in codes if code.strip()})
    if not wanted:
        return [], ["Choose at least one branch: the client sends records for its branches only."]
    found = {b.code.upper(): b for b in Branch.objects.filter(institution=institution, code__in=wanted)}
    problems = []
    missing = [code for code in wanted if code not in found]
    if missing:
        problems.append(f"No such branch in {institution.name}: {', '.join(missing)}.")
    inactive = [code for code in wanted if code in found and not found[code].is_active]
    if inactive:
        problems.append(f"Branch {', '.join(inactive)} is deactivated.")
    return [found[code] for code in wanted if code in found], problems


def _check_expiry(expires_at: dt.datetime | None) -> list[str]:
    if expires_at is not None and expires_at <= timezone.now():
        return ["Choose a date in the future."]
    return []


def _check_webhook_url(url: str) -> list[str]:
    if not url:
        return []
    try:
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError:
        return ["Enter a valid URL."]
    parts = urlsplit(url)
    # Status changes travel to it: plain HTTP only to a receiver on this machine.
    if parts.scheme != "https" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
        return ["Use an https:// address: callbacks carry the records' status and must travel encrypted."]
    if len(url) > ApiClient._meta.get_field("webhook_url").max_length:  # type: ignore[operator]
        return ["Use at most 300 characters."]
    return []


def _raise_if(problems: dict[str, list[str]]) -> None:
    problems = {field: found for field, found in problems.items() if found}
    if problems:
        raise ValidationError(problems)


def _state(client: ApiClient) -> dict[str, Any]:
    return {
        "branches": sorted(b.code for b in client.branches.all()),
        "submit_on_arrival": client.submit_on_arrival,
        "token_expires_at": client.token_expires_at.isoformat() if client.token_expires_at else None,
        "webhook_url": client.webhook_url,
        "rate_limit_per_minute": client.rate_limit_per_minute,
    }


def _audit(*, actor: User | None, action: str, client: ApiClient, detail: dict[str, Any]) -> None:
    AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type="ApiClient",
        object_id=str(client.pk),
        detail={"name": client.name, **detail, "by_command": actor is None},
    )


def _locked(actor: User | None, client_id: int) -> ApiClient:
    """The client, row-locked, refused when it is revoked (a revoked client stays revoked: make a new one)."""
    client = get_object_or_404(
        ApiClient.objects.select_for_update(of=("self",)), pk=client_id, institution=_institution(actor)
    )
    if client.revoked_at is not None:
        raise ApiClientRefused(f"API client {client.name} is revoked: create a new client instead.")
    return client


@transaction.atomic
def api_client_create(
    *,
    actor: User | None,
    name: str,
    branch_codes: Iterable[str],
    submit_on_arrival: bool = False,
    expires_at: dt.datetime | None = None,
    webhook_url: str = "",
) -> tuple[ApiClient, str]:
    """Create a client and the maker it acts as (``api-<name>``, no usable password, its branches).

    Returns the client and its token: the only time the token exists outside the caller's hands is here.
    A webhook secret is made when a callback URL is given (read it from ``client.webhook_secret``, once)."""
    _require_admin(actor)
    institution = _institution(actor)
    name = name.strip()
    webhook_url = webhook_url.strip()
    branches, branch_problems = _branches(institution, branch_codes)
    _raise_if(
        {
            "name": _check_name(name),
            "branch_codes": branch_problems,
            "expires_at": _check_expiry(expires_at),
            "webhook_url": _check_webhook_url(webhook_url),
        }
    )
    user = User(username=USERNAME_PREFIX + name, role=Role.MAKER, first_name="API client", last_name=name)
    user.set_unusable_password()
    user.save()
    user.branches.set(branches)
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        institution=institution,
        user=user,
        submit_on_arrival=submit_on_arrival,
        token_hash=token_hash(token),
        token_prefix=token_prefix(token),
        token_expires_at=expires_at,
        webhook_url=webhook_url,
        webhook_secret=new_webhook_secret() if webhook_url else "",
        created_by=actor,
    )
    client.branches.set(branches)
    after = _state(client)
    _audit(
        actor=actor,
        action="api_client_created",
        client=client,
        detail={
            "username": user.username,
            "token_prefix": client.token_prefix,
            "changes": {field: [None, value] for field, value in after.items() if value},
        },
    )
    return client, token


@transaction.atomic
def api_client_rotate(*, actor: User | None, client_id: int, expires_at: dt.datetime | None = None) -> str:
    """Give the client a new token and return it; the old token stops working when this commits.

    ``expires_at`` is the new token's expiry (none: it does not expire)."""
    _require_admin(actor)
    _raise_if({"expires_at": _check_expiry(expires_at)})
    client = _locked(actor, client_id)
    old_prefix = client.token_prefix
    token = new_token()
    client.token_hash = token_hash(token)
    client.token_prefix = token_prefix(token)
    client.token_expires_at = expires_at
    client.token_rotated_at = timezone.now()
    client.save(update_fields=["token_hash", "token_prefix", "token_expires_at", "token_rotated_at"])
    _audit(
        actor=actor,
        action="api_client_token_rotated",
        client=client,
        detail={
            "changes": {
                "token_prefix": [old_prefix, client.token_prefix],
                "token_expires_at": [None, expires_at.isoformat() if expires_at else None],
            }
        },
    )
    return token


@transaction.atomic
def api_client_revoke(*, actor: User | None, client_id: int) -> ApiClient:
    """Revoke the client for good: its token stops working and its user is deactivated. History stays."""
    _require_admin(actor)
    client = _locked(actor, client_id)
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    User.objects.filter(pk=client.user_id).update(is_active=False)
    _audit(
        actor=actor,
        action="api_client_revoked",
        client=client,
        detail={"token_prefix": client.token_prefix, "changes": {"revoked": [False, True]}},
    )
    return client


@transaction.atomic
def api_client_update(
    *,
    actor: User | None,
    client_id: int,
    branch_codes: Iterable[str],
    submit_on_arrival: bool,
    expires_at: dt.datetime | None,
    webhook_url: str,
    rate_limit_per_minute: int,
) -> tuple[ApiClient, str]:
    """Change a client's branches, review setting, token expiry, callback URL and rate limit.

    Returns the client and a new webhook secret when a callback URL was set where there was none (shown
    once), else "". Its user's branches follow the client's."""
    _require_admin(actor)
    client = _locked(actor, client_id)
    webhook_url = webhook_url.strip()
    branches, branch_problems = _branches(client.institution, branch_codes)
    expiry_problems = [] if expires_at == client.token_expires_at else _check_expiry(expires_at)
    rate_problems = [] if 1 <= rate_limit_per_minute <= 100_000 else ["Choose between 1 and 100,000."]
    _raise_if(
        {
            "branch_codes": branch_problems,
            "expires_at": expiry_problems,
            "webhook_url": _check_webhook_url(webhook_url),
            "rate_limit_per_minute": rate_problems,
        }
    )
    before = _state(client)
    client.submit_on_arrival = submit_on_arrival
    client.token_expires_at = expires_at
    client.webhook_url = webhook_url
    client.rate_limit_per_minute = rate_limit_per_minute
    secret = ""
    if webhook_url and not client.webhook_secret:
        secret = client.webhook_secret = new_webhook_secret()
    elif not webhook_url:
        client.webhook_secret = ""
    client.save()
    client.branches.set(branches)
    client.user.branches.set(branches)
    after = _state(client)
    changes = {field: [before[field], after[field]] for field in after if before[field] != after[field]}
    if changes or secret:
        detail: dict[str, Any] = {"changes": changes}
        if secret:
            detail["webhook_secret_made"] = True
        _audit(actor=actor, action="api_client_updated", client=client, detail=detail)
    return client, secret


@transaction.atomic
def api_client_webhook_secret_rotate(*, actor: User | None, client_id: int) -> str:
    """Give the client a new webhook signing secret and return it; deliveries are signed with it from now."""
    _require_admin(actor)
    client = _locked(actor, client_id)
    if not client.webhook_url:
        raise ApiClientRefused("Set a callback URL first: the secret signs the callbacks sent to it.")
    secret = new_webhook_secret()
    client.webhook_secret = secret
    client.save(update_fields=["webhook_secret"])
    _audit(
        actor=actor,
        action="api_client_webhook_secret_rotated",
        client=client,
        detail={"webhook_secret_replaced": True},
    )
    return secret


# --- Reads for the pages -------------------------------------------------------------------------------


def api_client_list(actor: User) -> QuerySet[ApiClient]:
    """The clients of the admin's institution, active first, with their branches (no query per row)."""
    return (
        ApiClient.objects.filter(institution=_institution(actor))
        .prefetch_related(Prefetch("branches", queryset=Branch.objects.order_by("code")))
        .order_by("revoked_at", "name")
    )


def api_client_get(actor: User, client_id: int) -> ApiClient:
    """One client of the admin's institution, or 404."""
    return get_object_or_404(api_client_list(actor).select_related("user", "created_by"), pk=client_id)


def api_client_deliveries(client: ApiClient) -> QuerySet[WebhookDelivery]:
    """The client's latest webhook deliveries, newest first."""
    return client.deliveries.order_by("-created_at", "-id")[:DELIVERY_LOG_LENGTH]
