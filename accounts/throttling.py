"""Log-in throttling: django-axes' database handler with a second, higher limit per username.

django-axes counts failures per set of AXES_LOCKOUT_PARAMETERS and compares the largest count with one
AXES_FAILURE_LIMIT, so listing ``["username"]`` beside ``["username", "ip_address"]`` would lock a username
everywhere after the pair's small limit. This handler keeps the pair as axes' only set (AXES_FAILURE_LIMIT
failures lock that username from that address) and adds PORTAL_LOGIN_USERNAME_FAILURE_LIMIT failures of
one username from any addresses, within the cool-off, which lock that username from every address.

Nothing locks an address: the people behind one proxy or NAT are never locked out together by someone
else's guesses. A successful log-in resets its own pair only (axes' reset follows the parameter sets), so
the real user logging in from the office does not wipe the count of guesses made elsewhere.
"""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def username_failures(request: HttpRequest, username: str) -> int:
    """Failed log-ins for ``username`` from any address within the cool-off."""
    attempts = AccessAttempt.objects.filter(
        username=username, attempt_time__gte=get_cool_off_threshold(request)
    )
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class PortalAxesHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """AxesDatabaseHandler plus the per-username limit across addresses (see the module's docstring)."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """The pair's failures, or, once the username is over its own limit, at least the pair's limit:
        axes compares this number with AXES_FAILURE_LIMIT both before a log-in and after a failure."""
        failures = int(super().get_failures(request, credentials))
        username = get_client_username(request, credentials)
        if username and username_failures(request, username) >= settings.PORTAL_LOGIN_USERNAME_FAILURE_LIMIT:
            return max(failures, int(get_failure_limit(request, credentials)))
        return failures
