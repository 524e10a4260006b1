"""The administration site: only for staff verified by a confirmed OTP device, signed in on the portal's
own log-in page (throttled, with the same two-factor step as every other page)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_otp.admin import OTPAdminSite

from .selectors import totp_device_confirmed_get
from .views import with_next


class PortalAdminSite(OTPAdminSite):
    """OTPAdminSite (refuses staff who are not OTP-verified) under the usual ``admin`` name."""

    site_header = "CKYC Portal administration"
    site_title = "CKYC Portal administration"
    index_title = "Code lists, PIN master and read-only views"
    site_url = "/"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    @method_decorator(never_cache)
    @login_not_required
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """No second log-in form: send people to the portal's log-in, or to the two-factor step."""
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated:
            return redirect_to_login(next_url)
        if not request.user.is_staff:
            # Signed in but not an administrator: a clear refusal, not a loop through the code page.
            raise PermissionDenied("The administration pages are for portal administrators only.")
        if request.user.is_verified():  # type: ignore[attr-defined]
            raise PermissionDenied("Your account may not use the administration pages.")
        step = "accounts:otp_verify" if totp_device_confirmed_get(user=request.user) else "accounts:otp_enrol"
        return with_next(step, next_url)
