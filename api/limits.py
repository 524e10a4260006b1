"""Request limits: the per-client rate limit and reading a JSON body within the size cap.

The rate limit is a fixed one-minute window per client, counted in the "api" cache (Redis in production,
so every web process shares it): one atomic increment a request, and a client that spends its minute early
waits for the next one (Retry-After says how long). A sliding window would smooth bursts at the edges of a
minute, for twice the cache work; a CBS pushing batches does not need it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

from .errors import BadRequest, BodyTooLarge, RateLimited, UnsupportedMediaType
from .models import ApiClient

_WINDOW_SECONDS = 60


def rate_limit_check(*, client: ApiClient, now: float | None = None) -> None:
    """Count one request of ``client``; raises RateLimited (with Retry-After) past its limit this minute."""
    now = time.time() if now is None else now
    window = int(now // _WINDOW_SECONDS)
    key = f"rate:{client.pk}:{window}"
    cache = caches["api"]
    cache.add(key, 0, timeout=_WINDOW_SECONDS * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens the window
        cache.set(key, 1, timeout=_WINDOW_SECONDS * 2)
        count = 1
    if count > client.rate_limit_per_minute:
        retry_after = max(1, int((window + 1) * _WINDOW_SECONDS - now + 0.999))
        raise RateLimited(retry_after=retry_after, limit=client.rate_limit_per_minute)


def json_body(request: HttpRequest) -> tuple[bytes, Any]:
    """The request's raw body and its JSON: refused before parsing when too large (413) or not JSON
    (415), and with the line, column and character position when it is malformed (400).

    Reads the stream itself, up to the cap, rather than ``request.body``: Django's own upload limit
    (DATA_UPLOAD_MAX_MEMORY_SIZE, for the pages' forms) is far below a 1,000-record request.
    """
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise UnsupportedMediaType()
    cap = settings.API_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    too_large = BodyTooLarge(f"The request body is limited to {cap} bytes: send fewer records a request.")
    if not declared.isdigit() or int(declared) > cap:
        raise too_large
    raw = request.read(cap + 1)
    if len(raw) > cap:
        raise too_large
    charset = request.encoding or "utf-8"
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise BadRequest("The body is not valid UTF-8 text.", {"body": "Not valid UTF-8"}) from exc
    try:
        return raw, json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"Malformed JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos}): {exc.msg}."
        raise BadRequest(message, {"body": message}) from exc
