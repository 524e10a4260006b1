"""The API for the bank's own systems (django-ninja): push records in KwikID's shape, read their fate.

Served under /api/v1/. Every answer is JSON, refusals included (``{"detail": ..., "message": ...}``), and no
view here reads or sets a session or a CSRF cookie: a client is its bearer token. The OpenAPI document is
at /api/v1/openapi.json and its docs page at /api/v1/docs, from the installed package's own files.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import Header, NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.responses import Status

from ckycportal.errors import PortalError

from . import selectors, services
from .audit import refusal_audit
from .auth import ClientBearer
from .errors import ApiError, NotFound
from .limits import json_body
from .schemas import (
    RECORDS_REQUEST_BODY,
    ChangesOut,
    ErrorOut,
    RecordsOut,
    RecordStatusOut,
    request_components,
)

logger = logging.getLogger(__name__)

_REFUSALS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut}
_AUDITED_REFUSALS = frozenset({403, 413, 415})


class PortalAPI(NinjaAPI):
    """NinjaAPI whose views need no portal log-in (the token is the log-in), whose unknown paths answer a
    JSON 404, and whose document describes the request body by KwikID's record schema."""

    def _get_urls(self) -> list[URLResolver | URLPattern]:
        # ninja's root view (its name places the API) raises Django's HTML 404: answer JSON instead.
        urls = [
            path("", not_found, name="api-root") if getattr(p, "name", "") == "api-root" else p
            for p in super()._get_urls()
        ]
        urls.append(re_path(r"^", not_found, name="not-found"))
        for pattern in urls:
            callback = getattr(pattern, "callback", None)
            if callback is not None:
                callback.login_required = False
        return urls

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(**kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(request_components())
        return schema


api = PortalAPI(
    title="CKYC Portal API",
    version="1",
    description=(
        "For the bank's own systems: push KYC records in KwikID's upload shape, and learn their fate. "
        "Authenticate with Authorization: Bearer <token> (an API client made by an admin)."
    ),
    auth=ClientBearer(),
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, detail: dict[str, str] | str, message: str) -> HttpResponse:
    response = api.create_response(request, {"detail": detail, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    """Any path under /api/v1/ the API does not have: a JSON 404, never the portal's pages."""
    return _error(request, 404, "Not found", "No such API endpoint: see /api/v1/docs.")


def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    if exc.status in _AUDITED_REFUSALS:
        client = getattr(request, "auth", None)
        refusal_audit(client=client, status=exc.status, reason=type(exc).__name__)
    response = _error(request, exc.status, exc.detail, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    detail = {
        ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "path", "header")): str(
            error.get("msg", "Invalid")
        )
        for error in exc.errors
    }
    return _error(request, 400, detail, "The request's parameters are not valid.")


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc), str(exc))


def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "Unauthorized", "Send a valid API token as Authorization: Bearer <token>.")


def _permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    # The client's maker user lost its role or a branch: an admin's fix, not the caller's.
    refusal_audit(client=getattr(request, "auth", None), status=403, reason="permission denied")
    return _error(request, 403, "Forbidden", str(exc) or "This client may not do that.")


def _portal_refusal(request: HttpRequest, exc: PortalError) -> HttpResponse:
    # A records service refused (a record changed meanwhile, a move not allowed): nothing was saved.
    return _error(request, 409, "Conflict", exc.message)


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API request failed")
    return _error(
        request, 500, "Server error", "Something went wrong on the portal; nothing is known to be saved."
    )


# ninja types a handler as taking the exception or its class; these take the exception.
_HANDLERS: dict[type[Exception], Any] = {
    ApiError: _api_error,
    PortalError: _portal_refusal,
    PermissionDenied: _permission_denied,
    Http404: lambda request, exc: _error(request, 404, "Not found", "Nothing here for this client."),
    ValidationError: _validation_error,
    HttpError: _http_error,
    AuthenticationError: _authentication_error,
    Exception: _unexpected,
}
for _exception, _handler in _HANDLERS.items():
    api.add_exception_handler(_exception, _handler)


@api.post(
    "/records/",
    response={
        200: RecordsOut,
        201: RecordsOut,
        400: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
        **_REFUSALS,
    },
    openapi_extra=RECORDS_REQUEST_BODY,
    summary="Send records (KwikID's upload shape), all or nothing",
)
def records_post(
    request: HttpRequest,
    dry_run: bool = False,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=200),
) -> Status[dict[str, Any]]:
    """Check and save up to API_MAX_RECORDS records; 201 lists each one's reference, id and status."""
    client = request.auth  # type: ignore[attr-defined]
    raw, body = json_body(request)
    fingerprint = services.request_fingerprint(raw, dry_run=dry_run)
    if idempotency_key and not dry_run:
        earlier = services.idempotent_answer(client=client, key=idempotency_key, fingerprint=fingerprint)
        if earlier is not None:
            return Status(earlier.status_code, earlier.response)
    try:
        outcomes = services.records_receive(
            client=client,
            body=body,
            dry_run=dry_run,
            idempotency_key="" if dry_run else idempotency_key,
            fingerprint=fingerprint,
        )
    except services.IdempotentReplay:
        earlier = services.idempotent_answer(client=client, key=idempotency_key, fingerprint=fingerprint)
        assert earlier is not None
        return Status(earlier.status_code, earlier.response)
    return Status(200 if dry_run else 201, services.outcomes_json(outcomes, dry_run=dry_run))


@api.get(
    "/records/",
    response={200: ChangesOut, 400: ErrorOut, **_REFUSALS},
    summary="Records whose status changed since a cursor",
)
def records_changes(
    request: HttpRequest,
    changed_since: str = Query("", max_length=200),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """Status moves of the client's records, oldest first; pass ``next_cursor`` back as ``changed_since``."""
    return selectors.api_changes_list(client=request.auth, cursor=changed_since, limit=limit)  # type: ignore[attr-defined]


@api.get(
    "/records/{path:kyc_ref_no}",
    response={200: RecordStatusOut, 400: ErrorOut, **_REFUSALS},
    summary="One record's status, deadline, KwikID's message and KIN",
)
def record_get(request: HttpRequest, kyc_ref_no: str) -> dict[str, Any]:
    """The record with this reference at one of the client's branches (404 otherwise)."""
    if len(kyc_ref_no) > 50:
        raise NotFound()
    return selectors.api_record_get(client=request.auth, kyc_ref_no=kyc_ref_no)  # type: ignore[attr-defined]
