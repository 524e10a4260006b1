"""The API's refusals: each is a ``PortalError`` with the HTTP status it answers and an optional ``detail``.

The endpoints turn every one of them into ``{"detail": ..., "message": ...}`` in one exception handler, so a
refusal looks the same whatever raised it. Messages and details never hold personal data: paths, field
labels and references only.
"""

from __future__ import annotations

from ckycportal.errors import PortalError


class ApiError(PortalError):
    """A refusal answered with ``status``; ``detail`` is a mapping of paths to messages, or a short string."""

    status = 400
    default_detail = "Bad request"

    def __init__(self, message: str = "", detail: dict[str, str] | str | None = None) -> None:
        super().__init__(message)
        self.detail: dict[str, str] | str = detail if detail is not None else self.default_detail


class BadRequest(ApiError):
    status = 400
    default_detail = "Bad request"


class Unauthorized(ApiError):
    status = 401
    default_detail = "Unauthorized"
    default_message = "Send a valid API token as Authorization: Bearer <token>."


class NotFound(ApiError):
    status = 404
    default_detail = "Not found"
    default_message = "Nothing here for this client."


class Conflict(ApiError):
    status = 409
    default_detail = "Conflict"


class BodyTooLarge(ApiError):
    status = 413
    default_detail = "Request body too large"


class UnsupportedMediaType(ApiError):
    status = 415
    default_detail = "Unsupported media type"
    default_message = "Send the body as JSON, with Content-Type: application/json."


class IdempotencyKeyReused(ApiError):
    status = 422
    default_detail = "Idempotency-Key reused"
    default_message = "This Idempotency-Key was already used for a different request body: use a new key."


class RateLimited(ApiError):
    status = 429
    default_detail = "Too many requests"

    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(f"More than {limit} requests a minute: try again in {retry_after} seconds.")
        self.retry_after = retry_after
