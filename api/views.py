"""The API client pages: administrators only. A token or webhook secret is rendered once, in the answer to
the POST that made it (never in a URL or a redirect), and that answer is not cached."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from ckycportal.errors import PortalError
from ckycportal.views import show_refusal
from institutions.models import AuditEvent, Role
from institutions.permissions import AuthedRequest, role_required
from institutions.selectors import institution_for

from . import clients, webhooks
from .forms import ApiClientCreateForm, ApiClientEditForm, TokenRotateForm
from .models import ApiClient


def _show_once(
    request: AuthedRequest, client: ApiClient, *, token: str = "", secret: str = ""
) -> HttpResponse:
    response = render(
        request, "api/apiclient_secret.html", {"client": client, "token": token, "secret": secret}
    )
    add_never_cache_headers(response)
    return response


@role_required(Role.ADMIN)
def client_list(request: AuthedRequest) -> HttpResponse:
    context = {"clients": clients.api_client_list(request.user), "now": timezone.now()}
    return render(request, "api/apiclient_list.html", context)


@role_required(Role.ADMIN)
def client_create(request: AuthedRequest) -> HttpResponse:
    form = ApiClientCreateForm(request.POST or None, institution=institution_for(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            client, token = clients.api_client_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                branch_codes=form.branch_codes(),
                submit_on_arrival=form.cleaned_data["submit_on_arrival"],
                expires_at=form.expires_at(),
                webhook_url=form.cleaned_data["webhook_url"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            return _show_once(request, client, token=token, secret=client.webhook_secret)
    return render(request, "api/apiclient_form.html", {"form": form})


def _initial(client: ApiClient) -> dict[str, Any]:
    expires = client.token_expires_at
    return {
        "branches": list(client.branches.all()),
        "submit_on_arrival": client.submit_on_arrival,
        "expires_on": (timezone.localtime(expires) - dt.timedelta(days=1)).date() if expires else None,
        "webhook_url": client.webhook_url,
        "rate_limit_per_minute": client.rate_limit_per_minute,
    }


@role_required(Role.ADMIN)
def client_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    client = clients.api_client_get(request.user, pk)
    form = ApiClientEditForm(request.POST or None, initial=_initial(client), institution=client.institution)
    if request.method == "POST" and client.revoked_at is None and form.is_valid():
        try:
            client, secret = clients.api_client_update(
                actor=request.user,
                client_id=client.pk,
                branch_codes=form.branch_codes(),
                submit_on_arrival=form.cleaned_data["submit_on_arrival"],
                expires_at=form.expires_at(),
                webhook_url=form.cleaned_data["webhook_url"],
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        except PortalError as exc:
            show_refusal(request, exc, prefix="Not saved: ")
            return redirect("api_clients:detail", pk=client.pk)
        else:
            if secret:
                return _show_once(request, client, secret=secret)
            messages.success(request, f"API client {client.name} was saved.")
            return redirect("api_clients:detail", pk=client.pk)
    context = {
        "client": client,
        "form": form,
        "rotate_form": TokenRotateForm(),
        "deliveries": clients.api_client_deliveries(client),
        "recent": AuditEvent.objects.filter(object_type="ApiClient", object_id=str(client.pk))
        .select_related("actor")
        .order_by("-created_at", "-pk")[:10],
    }
    return render(request, "api/apiclient_detail.html", context)


@require_POST
@role_required(Role.ADMIN)
def client_rotate(request: AuthedRequest, pk: int) -> HttpResponse:
    client = clients.api_client_get(request.user, pk)
    form = TokenRotateForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError([problem for problems in form.errors.values() for problem in problems])
        token = clients.api_client_rotate(
            actor=request.user, client_id=client.pk, expires_at=form.expires_at()
        )
    except (PortalError, ValidationError) as exc:
        show_refusal(request, exc, prefix="Not rotated: ")
        return redirect("api_clients:detail", pk=client.pk)
    client.refresh_from_db()
    return _show_once(request, client, token=token)


@require_POST
@role_required(Role.ADMIN)
def client_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    client = clients.api_client_get(request.user, pk)
    if request.POST.get("confirm") != client.name:
        messages.error(request, f"Not revoked: type the client's name, {client.name}, to confirm.")
        return redirect("api_clients:detail", pk=client.pk)
    try:
        clients.api_client_revoke(actor=request.user, client_id=client.pk)
    except PortalError as exc:
        show_refusal(request, exc, prefix="Not revoked: ")
    else:
        messages.success(request, f"API client {client.name} was revoked: its token no longer works.")
    return redirect("api_clients:detail", pk=client.pk)


@require_POST
@role_required(Role.ADMIN)
def client_webhook_secret(request: AuthedRequest, pk: int) -> HttpResponse:
    client = clients.api_client_get(request.user, pk)
    try:
        secret = clients.api_client_webhook_secret_rotate(actor=request.user, client_id=client.pk)
    except PortalError as exc:
        show_refusal(request, exc, prefix="Not replaced: ")
        return redirect("api_clients:detail", pk=client.pk)
    return _show_once(request, client, secret=secret)


@require_POST
@role_required(Role.ADMIN)
def delivery_redeliver(request: AuthedRequest, pk: int, delivery_id: int) -> HttpResponse:
    client = clients.api_client_get(request.user, pk)
    delivery = get_object_or_404(client.deliveries, pk=delivery_id)
    try:
        webhooks.delivery_redeliver(actor=request.user, delivery_id=delivery.pk)
    except PortalError as exc:
        show_refusal(request, exc, prefix="Not redelivered: ")
    else:
        messages.success(request, f"The callback for {delivery.kyc_ref_no} will be sent again.")
    return redirect("api_clients:detail", pk=client.pk)
