"""How a view shows a refusal: the one place a service's refusal becomes the message the user reads.

Views wrap a service call in ``except (PortalError, PermissionDenied)`` (plus ``ValidationError`` where a
service reports form errors and the page has no form to put them on) and hand the exception to
``show_refusal``. Anything else a service raises is a bug and reaches the error page. This module is the
bottom layer's: it imports nothing from the apps.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from .errors import PortalError

Refusal = PortalError | PermissionDenied | ValidationError


def refusal_message(exc: Refusal) -> str:
    """The text a user reads for a refusal: a ``PortalError``'s message as it is, a ``ValidationError``'s
    messages joined, and a ``PermissionDenied``'s reason (or a plain "not allowed" when it gives none)."""
    if isinstance(exc, PortalError):
        return exc.message
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Your role does not allow this."


def show_refusal(request: HttpRequest, exc: Refusal, *, prefix: str = "") -> None:
    """Put the refusal on the next page as an error message (``prefix`` first, e.g. "Not done: ")."""
    messages.error(request, f"{prefix}{refusal_message(exc)}")
