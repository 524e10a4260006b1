"""Session and response rules for signed-in users: an absolute session lifetime, the two-factor step for
the roles that need it, and no caching of pages that show customer data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers

from . import selectors
from .views import with_next

Handler = Callable[[HttpRequest], HttpResponseBase]

LOGIN_AT_SESSION_KEY = "accounts_login_at"

# Pages a signed-in user reaches before the two-factor step, besides every page that needs no log-in.
TWO_FACTOR_EXEMPT_VIEWS = frozenset({"logout", "accounts:otp_enrol", "accounts:otp_verify"})


class RequestBodyGuardMiddleware:
    """Refuses a body before anything reads it: one above PORTAL_MAX_REQUEST_BYTES (413); any body sent
    signed out to a page that needs a log-in (to the log-in page, by LoginRequiredMiddleware's own rule);
    and a multipart body above DATA_UPLOAD_MAX_MEMORY_SIZE sent signed out anywhere (413), so that nothing
    from someone signed out is spooled to a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE is far above it).

    Placed right after AuthenticationMiddleware: this runs before every middleware's process_view, and
    CsrfViewMiddleware's reads request.POST, which parses a multipart body and writes its files above
    FILE_UPLOAD_MAX_MEMORY_SIZE to disk, before LoginRequiredMiddleware's process_view could refuse it.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.login_required = LoginRequiredMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body then either
        if length > settings.PORTAL_MAX_REQUEST_BYTES:
            return _too_large()
        if length and not request.user.is_authenticated:
            try:
                match = resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404:
                match = None  # a 404 follows; nothing reads the body of a page that does not exist
            if match is not None:
                refusal = self.login_required.process_view(request, match.func, match.args, match.kwargs)
                if refusal is not None:
                    return refusal
            multipart = (request.content_type or "").lower() == "multipart/form-data"
            if multipart and length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return _too_large()
        return self.get_response(request)


def _too_large() -> HttpResponse:
    return HttpResponse("Request body too large.", status=413, content_type="text/plain")


class AbsoluteSessionTimeoutMiddleware:
    """Ends a session PORTAL_SESSION_MAX_SECONDS after its log-in, however active it has been (the idle
    timeout is SESSION_COOKIE_AGE with SESSION_SAVE_EVERY_REQUEST)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.user.is_authenticated:
            login_at = request.session.get(LOGIN_AT_SESSION_KEY)
            if login_at is not None and time.time() - float(login_at) > settings.PORTAL_SESSION_MAX_SECONDS:
                logout(request)  # flushes the session; the page then asks for a log-in as usual
                hours = settings.PORTAL_SESSION_MAX_SECONDS / 3600
                messages.info(request, f"Your session reached its {hours:g}-hour limit: please log in again.")
        response = self.get_response(request)
        if request.user.is_authenticated and LOGIN_AT_SESSION_KEY not in request.session:
            record_login_time(request)  # a session from before this rule: its clock starts now
        return response


def record_login_time(request: HttpRequest, **kwargs: Any) -> None:
    """Start the session's absolute clock; connected to user_logged_in, so every log-in restarts it."""
    request.session[LOGIN_AT_SESSION_KEY] = time.time()


class TwoFactorRequiredMiddleware:
    """Sends a signed-in user who has not passed the second factor to it: to enrolment when their role
    requires a device and they have none, else to the code page when they have a confirmed device.

    Must come after django_otp's OTPMiddleware (request.user.is_verified) and LoginRequiredMiddleware.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        user = request.user
        if not user.is_authenticated or user.is_verified():  # type: ignore[union-attr,attr-defined]
            return None
        if not getattr(view_func, "login_required", True):
            return None  # public pages (log-in, password reset, health check) need no second factor
        match = request.resolver_match
        if match is not None and match.view_name in TWO_FACTOR_EXEMPT_VIEWS:
            return None
        next_url = request.get_full_path() if request.method == "GET" else ""
        if selectors.totp_device_confirmed_get(user=user):
            return with_next("accounts:otp_verify", next_url)
        if selectors.two_factor_required(user=user):
            return with_next("accounts:otp_enrol", next_url)
        return None


class NoStoreForSignedInMiddleware:
    """Every response to a signed-in user may show customer PII: no browser or proxy may keep a copy."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)  # Cache-Control: max-age=0, no-cache, no-store, ...; private
            response["Pragma"] = "no-cache"  # for HTTP/1.0 caches
        return response
