"""Role checks for views. Branch scoping lives in the selectors; these only say who may use a page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .models import Role, User

View = Callable[..., HttpResponse]


class AuthedRequest(HttpRequest):
    """A request behind LoginRequiredMiddleware: its user is always a signed-in portal user."""

    user: User


def role_required(*roles: Role) -> Callable[[View], View]:
    """Allow the view only to users holding one of ``roles`` (403 otherwise)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if getattr(request.user, "role", None) not in roles:
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
