"""The two-factor pages: enrol a device (QR code and secret, confirmed with a code), replace it (password
and current code first), verify a log-in; and the gate before every page showing personal data in clear."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import django_otp
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.permissions import AuthedRequest

from . import selectors, services
from .forms import ReplaceDeviceForm, TotpCodeForm

WRONG_CODE = "That code is not right. Type the code the app shows now (and check the phone's clock)."
PII_NEEDS_SECOND_FACTOR = (
    "Personal data in clear needs two-factor authentication, whatever your role: "
    "pass it here, then go on where you were."
)

# The new device that a password and a current code allowed this session to confirm, and until when.
REPLACE_SESSION_KEY = "accounts_otp_replace"
REPLACE_SECONDS = 600


def throttle_refusal(device: TOTPDevice) -> str:
    """Why no code may be tried now (after several wrong ones, django-otp doubles the wait each time)."""
    allowed, data = device.verify_is_allowed()
    if allowed:
        return ""
    wait = math.ceil((data["locked_until"] - timezone.now()).total_seconds())
    return f"Too many wrong codes: wait {max(wait, 1)} seconds before the next try."


def with_next(viewname: str, next_url: str = "") -> HttpResponseRedirect:
    url = reverse(viewname)
    return HttpResponseRedirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


def next_url(request: HttpRequest) -> str:
    """Where to go after the two-factor step: the requested page if it is on this site, else the dashboard."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def second_factor_refusal(request: HttpRequest, back: str) -> HttpResponse | None:
    """None when the session has passed the second factor; else the way to it, whatever the user's role:
    the code page when they have a device, enrolment when they have none, each leading back to ``back``.

    For pages that show personal data in clear (reveals, exports with personal data, a record's edit
    form): a password alone never shows it.
    """
    user = request.user
    if user.is_verified():  # type: ignore[union-attr]  # installed by django_otp's OTPMiddleware
        return None
    messages.info(request, PII_NEEDS_SECOND_FACTOR)
    if selectors.totp_device_confirmed_get(user=user):
        return with_next("accounts:otp_verify", back)
    return with_next("accounts:otp_enrol", back)


def second_factor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """second_factor_refusal in front of a view; the way back is the page itself (a GET's full path)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        back = request.get_full_path() if request.method == "GET" else request.path
        return second_factor_refusal(request, back) or view(request, *args, **kwargs)

    return wrapper


def _replacement_allowed(request: AuthedRequest) -> TOTPDevice | None:
    """The pending device this session may confirm in place of the current one (password and current
    code given within REPLACE_SECONDS), if any."""
    allowed = request.session.get(REPLACE_SESSION_KEY) or {}
    if not allowed or allowed.get("until", 0) < time.time():
        return None
    return TOTPDevice.objects.filter(pk=allowed.get("device"), user=request.user, confirmed=False).first()


def otp_enrol(request: AuthedRequest) -> HttpResponse:
    user = request.user
    verified = user.is_verified()  # type: ignore[attr-defined]  # installed by django_otp's OTPMiddleware
    current = selectors.totp_device_confirmed_get(user=user)
    if current is not None and not verified:
        # Replacing a device needs the current one first.
        return with_next("accounts:otp_verify", next_url(request))
    if current is not None:
        pending = _replacement_allowed(request)
        if pending is None:
            return with_next("accounts:otp_replace", next_url(request))
        device = pending
    else:
        device = services.totp_device_start(user=user)
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        refusal = throttle_refusal(device)
        if refusal:
            form.add_error("code", refusal)
        elif services.totp_device_confirm(
            device=device, code=form.cleaned_data["code"], replace_allowed=current is not None
        ):
            request.session.pop(REPLACE_SESSION_KEY, None)
            django_otp.login(request, device)
            messages.success(request, "Two-factor authentication is on: each log-in will ask for a code.")
            return HttpResponseRedirect(next_url(request))
        else:
            form.add_error("code", WRONG_CODE)
    context = {
        "form": form,
        "next": next_url(request),
        "replacing": current is not None,
        "required": selectors.two_factor_required(user=user),
        # Before the second factor every other page leads back here: the frame shows only "Log out".
        "second_factor_pending": not verified and selectors.two_factor_required(user=user),
        "qr": selectors.totp_qr_data_uri(device=device),
        "secret": selectors.totp_secret_b32(device=device),
    }
    return render(request, "accounts/otp_enrol.html", context)


def otp_replace(request: AuthedRequest) -> HttpResponse:
    """Before a new authenticator replaces the current one: the password and a code from the current one."""
    user = request.user
    current = selectors.totp_device_confirmed_get(user=user)
    if current is None:
        return with_next("accounts:otp_enrol", next_url(request))  # nothing to replace: a first enrolment
    form = ReplaceDeviceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        refusal = throttle_refusal(current)
        if refusal:
            form.add_error("code", refusal)
        else:
            try:
                pending = services.totp_device_replace_start(
                    user=user,
                    device=current,
                    password=form.cleaned_data["password"],
                    code=form.cleaned_data["code"],
                )
            except services.ReplacementRefused as exc:
                form.add_error(exc.field, exc.message)
            else:
                until = time.time() + REPLACE_SECONDS
                request.session[REPLACE_SESSION_KEY] = {"device": pending.pk, "until": until}
                return with_next("accounts:otp_enrol", next_url(request))
    return render(request, "accounts/otp_replace.html", {"form": form, "next": next_url(request)})


def otp_verify(request: AuthedRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():  # type: ignore[attr-defined]
        return HttpResponseRedirect(next_url(request))
    device = selectors.totp_device_confirmed_get(user=user)
    if device is None:
        return with_next("accounts:otp_enrol", next_url(request))
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        refusal = throttle_refusal(device)
        if refusal:
            form.add_error("code", refusal)
        elif services.totp_device_verify(device=device, code=form.cleaned_data["code"]):
            django_otp.login(request, device)
            return HttpResponseRedirect(next_url(request))
        else:
            form.add_error("code", WRONG_CODE)
    context = {"form": form, "next": next_url(request), "second_factor_pending": True}
    return render(request, "accounts/otp_verify.html", context)


def locked_out(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> HttpResponse:
    """django-axes' answer to a log-in while the username is locked, from this address or from everywhere
    (accounts.throttling): a 429 that says for how long."""
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username_limit": settings.PORTAL_LOGIN_USERNAME_FAILURE_LIMIT,
        "minutes": math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)
