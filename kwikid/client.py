"""KwikID CKYC upload and search client and its typed errors: the only module in the portal that imports
requests.

Every outcome of an upload call maps to one type, so callers follow the outcome table without HTTP details:

- ``UploadResult``: a 2xx; KwikID accepted the batch for processing.
- ``KwikIDAuthError``: 401/403, or no usable token (raised before anything is sent). Not retryable.
- ``KwikIDRejectedError``: any other 4xx, and 3xx (redirects are never followed). Not retryable; keeps
  ``detail``.
- ``KwikIDTransientError``: safe to send the same batch again: ``KwikIDConnectError`` (nothing reached
  KwikID), ``KwikIDServerError`` (5xx) and ``KwikIDRateLimitedError`` (429, with ``retry_after``).
- ``KwikIDUnknownOutcomeError``: the body was (or may have been) sent and no answer came back (read timeout,
  connection dropped). KwikID may have accepted the batch, so this is deliberately *not* transient.

A search (``search_pan``) returns a ``kwikid.search.SearchResult`` (found, not found, or unreadable; a 404
or 422 is read as a possible "not found") and raises the same errors for everything else. A search has no
side effects, so a caller may treat ``KwikIDUnknownOutcomeError`` from it as transient and simply search
again later; only for an upload does "it may have been accepted" matter.

Retries: the session's adapter is mounted with ``HTTPAdapter(max_retries=0)``. That is requests' default,
but we pin it because urllib3 on its own retries connection errors three times, and a retried POST on a
pooled keep-alive socket that the server closed between urllib3's liveness check and our write could send a
batch twice. Every retry decision belongs to the caller, which records each attempt in the database. The
cost of this choice: a stale socket that fails *after* the write surfaces as ``KwikIDUnknownOutcomeError``
(we cannot prove the server did not read the body), never as a silent resend. urllib3 discards pooled
sockets that are already closed before reusing them, so this is rare.

The environment (HTTP(S)_PROXY and NO_PROXY, REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) is read once per KwikID
address and process, not by requests on every call: on every call it cost about 0.6 ms of CPU, a third of a
search's own (the proxy variables, and the CA bundle's path checked on disk). ``.netrc`` is not read: the
token is the only credential sent.

Neither the token nor the request body (the records, or the PAN searched for) ever appears in an
exception's text: only status codes, sizes and timings. KwikID's response body is kept (truncated) on the
``body`` attribute for storage, never in str().
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exceptions

from kwikid.rejections import failed_records
from kwikid.search import NOT_FOUND_STATUSES, SEARCH_PATH, SearchResult, read_search_answer

UPLOAD_PATH = "ckycportalapi/ckyc-upload/"
BODY_LIMIT = 2000
# Bodies larger than this are not parsed as JSON: KwikID's answers are small, and an error page need not be.
_JSON_PARSE_LIMIT = 1024 * 1024
# RFC 6750 b64token characters are a subset of this: printable ASCII without spaces. Anything else would
# either be rejected by requests (with the header value in the message) or be a pasted-in mistake.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")
_DELTA_SECONDS_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")

# Found in a requests exception's chain only when no connection to KwikID was ever established, so the
# request body cannot have been sent. NewConnectionError (refused, DNS) subclasses ConnectTimeoutError.
_NOT_CONNECTED: tuple[type[BaseException], ...] = (
    urllib3_exceptions.ConnectTimeoutError,
    urllib3_exceptions.EmptyPoolError,
    urllib3_exceptions.ClosedPoolError,
    ssl.SSLCertVerificationError,  # the TLS handshake precedes the request
)


@dataclass(frozen=True)
class UploadResult:
    """KwikID accepted the batch for processing (not: CERSAI registered the customers)."""

    status_code: int
    message: str
    status: str
    body: str
    elapsed_ms: int
    # The whole answer as parsed JSON (None when it was not JSON), for its per-record results.
    parsed: Any = field(default=None, repr=False, compare=False)

    def record_failures(self, sent_refs: Sequence[str]) -> dict[str, str]:
        """The records of the request (by kyc_ref_no) that this 200 marks as failed, with KwikID's reason;
        {} when it carries no per-record results (a plain ``{message, status}``): all were accepted."""
        return failed_records(self.parsed, sent_refs)


class KwikIDError(Exception):
    """Base of every KwikID failure; its text never holds the token or the request body."""

    def __init__(
        self,
        text: str,
        *,
        status_code: int | None = None,
        body: str = "",
        elapsed_ms: int | None = None,
    ) -> None:
        super().__init__(text)
        self.status_code = status_code
        self.body = body[:BODY_LIMIT]
        self.elapsed_ms = elapsed_ms

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes survive pickling (Celery result backends, multiprocessing).
        return (self.__class__, self.args, self.__dict__)


class KwikIDAuthError(KwikIDError):
    """401/403, or no usable token; not retryable until the token is replaced."""

    def __init__(self, text: str, *, detail: Any = None, message: str = "", **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.detail: Any = {} if detail is None else detail
        self.message = message


class KwikIDRejectedError(KwikIDError):
    """Any other 4xx, or a 3xx (never followed); detail is KwikID's, {} if absent, null or unparseable."""

    def __init__(self, text: str, *, detail: Any = None, message: str = "", **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.detail: Any = {} if detail is None else detail
        self.message = message


class KwikIDTransientError(KwikIDError):
    """Retryable: nothing was accepted, so the same batch may be sent again."""


class KwikIDConnectError(KwikIDTransientError):
    """No connection was made (refused, DNS, connect timeout): nothing reached KwikID."""


class KwikIDServerError(KwikIDTransientError):
    """KwikID answered 5xx; the body (often an HTML page) is kept truncated."""


class KwikIDRateLimitedError(KwikIDTransientError):
    """KwikID answered 429; retry_after is in seconds when the Retry-After header was usable."""

    def __init__(self, text: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.retry_after = retry_after


class KwikIDUnknownOutcomeError(KwikIDError):
    """The body was sent but no answer came back: KwikID may have accepted it, so never resend blindly."""


# A pooled connection idle longer than this is not reused. Servers close idle keep-alive connections after a
# few seconds (Apache's default is 5); one closed just as a batch is written would leave that batch UNKNOWN.
KEEPALIVE_REUSE_SECONDS = 2.0


def _new_session(session_class: type[requests.Session] = requests.Session) -> requests.Session:
    session = session_class()
    # Proxies and the CA bundle come from _environment, once per address; no netrc (module docstring).
    session.trust_env = False
    # See the module docstring: no urllib3-level retries, ever.
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@functools.lru_cache(maxsize=64)
def _environment(url: str) -> tuple[dict[str, str], bool | str]:
    """The proxies (none when NO_PROXY names the host) and the certificate check requests would take from
    the environment for ``url``, read once per address: the environment of a worker does not change."""
    proxies = requests.utils.get_environ_proxies(url)
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return dict(proxies), verify


class _ProcessSession(requests.Session):
    """A keep-alive session that drops its pooled connections once they have sat idle too long."""

    idle_since = 0.0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if time.monotonic() - self.idle_since > KEEPALIVE_REUSE_SECONDS:
            self.close()  # the adapters stay mounted; the next request opens a fresh connection
        try:
            return super().send(request, **kwargs)
        finally:
            self.idle_since = time.monotonic()


_local = threading.local()


def process_session() -> requests.Session:
    """This worker process's (and thread's) session, so batch after batch reuses one connection.

    Made anew after a fork: a child never writes to its parent's sockets.
    """
    owner = (os.getpid(), threading.get_ident())
    if getattr(_local, "owner", None) != owner:
        _local.owner, _local.session = owner, _new_session(_ProcessSession)
    return _local.session  # type: ignore[no-any-return]


class KwikIDClient:
    """Posts CKYC batches to KwikID over one keep-alive session; use one client per thread."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("base_url must not carry a query, a fragment or credentials")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds")
        self._url = base_url.rstrip("/") + "/" + UPLOAD_PATH
        self._search_url = base_url.rstrip("/") + "/" + SEARCH_PATH
        self._token = token
        self._timeout = (connect_timeout, read_timeout)
        self._owns_session = session is None
        self._session = _new_session() if session is None else session
        self._proxies, self._verify = _environment(base_url.rstrip("/") + "/")
        self._templates: dict[tuple[str, tuple[tuple[str, str], ...]], requests.PreparedRequest] = {}

    def __repr__(self) -> str:
        return f"<KwikIDClient {self._url}>"

    def upload(self, payload: Mapping[str, Any] | bytes) -> UploadResult:
        """POST one batch; returns on 2xx, else raises a KwikIDError subclass (see the module docstring).

        ``payload`` is the body as a mapping, or already serialised as UTF-8 JSON bytes (sent as they are).
        """
        headers = self._headers()
        # Serialised once, as bytes: what is sent is exactly what was built (and a NaN is an error, not JSON).
        if isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
        response, elapsed_ms = self._post(self._url, data, headers, f"a {len(data)}-byte upload")
        return _interpret(response, elapsed_ms)

    def search_pan(self, pan: str) -> SearchResult:
        """Search the registry for the customer with this PAN; raises as upload() does (see the module
        docstring), except that a 404 or 422 is read as an answer. Safe to repeat: a search changes nothing.
        """
        headers = self._headers()
        id_no = pan.strip().upper() if isinstance(pan, str) else ""
        if not id_no:
            raise ValueError("a PAN is needed to search; nothing was sent")
        data = json.dumps({"id_type": "C", "id_no": id_no}, separators=(",", ":")).encode("utf-8")
        response, elapsed_ms = self._post(self._search_url, data, headers, "a search")
        code = response.status_code
        if 200 <= code < 300 or code in NOT_FOUND_STATUSES:
            return read_search_answer(code, response.content or b"", elapsed_ms)
        raise _error_for(response, elapsed_ms, "search")

    def _post(
        self, url: str, data: bytes, headers: dict[str, str], what: str
    ) -> tuple[requests.Response, int]:
        """POST ``data`` (never following a redirect), with the proxies and certificate check read from the
        environment; the response and its milliseconds. A transport failure raises as _transport_error
        maps it, ``what`` naming the request in the error (never its content)."""
        started = time.monotonic()
        try:
            request = self._prepared(url, headers)
            request.prepare_body(data, None)
            response = self._session.send(
                request,
                timeout=self._timeout,
                allow_redirects=False,
                proxies=self._proxies,
                verify=self._verify,
                stream=False,
                cert=None,
            )
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc, _elapsed_ms(started), what) from exc
        return response, _elapsed_ms(started)

    def _prepared(self, url: str, headers: dict[str, str]) -> requests.PreparedRequest:
        """A POST to ``url`` with these headers, ready for its body: the session's own preparation (its
        headers merged, the URL parsed and checked) is made once per address and copied for each request.
        It cost about 0.1-0.2 ms of CPU a call, a tenth of a registry search's own. While the session holds
        a cookie (KwikID authenticates by token alone, but a load balancer may set one), every request is
        prepared in full, so each carries the cookies as they are."""
        if self._session.cookies:
            return self._session.prepare_request(requests.Request("POST", url, headers=headers))
        key = (url, tuple(headers.items()))
        template = self._templates.get(key)
        if template is None:
            template = self._session.prepare_request(requests.Request("POST", url, headers=headers))
            self._templates[key] = template
        return template.copy()

    def _headers(self) -> dict[str, str]:
        """The request headers; raises KwikIDAuthError before anything is sent when the token is unusable."""
        token = self._token.strip() if isinstance(self._token, str) else ""
        if not token:
            raise KwikIDAuthError("KwikID token is empty; nothing was sent")
        if not _TOKEN_RE.fullmatch(token):
            raise KwikIDAuthError("KwikID token has characters not allowed in a header; nothing was sent")
        return {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def close(self) -> None:
        """Close pooled connections (only when the client created its own session)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> KwikIDClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it wraps, via args, reason, original_error and __cause__.

    __context__ is deliberately not followed: when upload() is called inside an ``except`` block (a retry
    loop), the context is the caller's previous error, which says nothing about this attempt.
    """
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            current.__cause__,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
            *current.args,
        ]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _never_connected(exc: BaseException) -> bool:
    return any(isinstance(item, _NOT_CONNECTED) for item in _exception_chain(exc))


def _transport_error(exc: requests.exceptions.RequestException, elapsed_ms: int, sent: str) -> KwikIDError:
    """Map a requests failure to the outcome it means for what was sent (``sent``: "a 1234-byte upload")."""
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return KwikIDUnknownOutcomeError(
            f"KwikID did not answer within the read timeout after {sent} was sent "
            f"({elapsed_ms} ms); it may have accepted it",
            elapsed_ms=elapsed_ms,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _never_connected(exc):
            return KwikIDConnectError(
                f"could not connect to KwikID ({name}, {elapsed_ms} ms); nothing was sent",
                elapsed_ms=elapsed_ms,
            )
        # "Connection aborted" (RemoteDisconnected, reset) or anything we cannot place before the write.
        return KwikIDUnknownOutcomeError(
            f"connection to KwikID was lost after {sent} was sent ({name}, {elapsed_ms} ms); "
            "it may have accepted it",
            elapsed_ms=elapsed_ms,
        )
    if isinstance(exc, ValueError):
        # InvalidURL, InvalidHeader, MissingSchema, ...: requests refused to build the request.
        return KwikIDError(
            f"the request to KwikID could not be built ({name}); nothing was sent", elapsed_ms=elapsed_ms
        )
    # ChunkedEncodingError, ContentDecodingError and anything unforeseen: the request went out.
    return KwikIDUnknownOutcomeError(
        f"KwikID's answer to {sent} could not be read ({name}, {elapsed_ms} ms); it may have accepted it",
        elapsed_ms=elapsed_ms,
    )


def _body_text(response: requests.Response) -> str:
    """The start of the response body as text, never more than BODY_LIMIT characters."""
    # Decoding only a prefix keeps a huge error page cheap; 4 bytes per character covers any UTF-8.
    raw = (response.content or b"")[: BODY_LIMIT * 4]
    content_type = response.headers.get("Content-Type", "")
    encoding = response.encoding if "charset=" in content_type.lower() and response.encoding else "utf-8"
    try:
        text = raw.decode(encoding, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    return text[:BODY_LIMIT]


_UNPARSEABLE = object()


def _json_body(response: requests.Response) -> Any:
    """The parsed JSON body, or _UNPARSEABLE: error bodies are often HTML, so never call .json() blindly."""
    raw = response.content or b""
    if not raw or len(raw) > _JSON_PARSE_LIMIT:
        return _UNPARSEABLE
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _UNPARSEABLE


def _string_field(parsed: Any, key: str) -> str:
    value = parsed.get(key) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else ""


def _parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS_RE.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are always GMT
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _interpret(response: requests.Response, elapsed_ms: int) -> UploadResult:
    """Return the result of a 2xx; raise the matching error for anything else."""
    code = response.status_code
    body = _body_text(response)
    parsed = _json_body(response)
    if 200 <= code < 300:
        return UploadResult(
            status_code=code,
            message=_string_field(parsed, "message"),
            status=_string_field(parsed, "status"),
            body=body,
            elapsed_ms=elapsed_ms,
            parsed=None if parsed is _UNPARSEABLE else parsed,
        )
    raise _error_for(response, elapsed_ms, "upload", body=body, parsed=parsed)


def _error_for(
    response: requests.Response, elapsed_ms: int, what: str, *, body: str | None = None, parsed: Any = None
) -> KwikIDError:
    """The typed error for a non-2xx answer to an upload or a search (``what``, for the text)."""
    code = response.status_code
    if body is None:
        body, parsed = _body_text(response), _json_body(response)
    common: dict[str, Any] = {"status_code": code, "body": body, "elapsed_ms": elapsed_ms}
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    message = _string_field(parsed, "message")
    # Only counts go into the text: KwikID's message and detail may quote the submitted values (PII).
    entries = f"{len(detail)} entries in detail" if isinstance(detail, dict | list) else "no detail"
    if code in (401, 403):
        error: KwikIDError = KwikIDAuthError(
            f"KwikID refused the token: HTTP {code} ({elapsed_ms} ms)",
            detail=detail,
            message=message,
            **common,
        )
    elif code == 429:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        error = KwikIDRateLimitedError(
            f"KwikID is rate limiting: HTTP 429, retry after {retry_after} s ({elapsed_ms} ms)",
            retry_after=retry_after,
            **common,
        )
    elif code >= 500:
        error = KwikIDServerError(
            f"KwikID failed: HTTP {code}, {len(response.content or b'')}-byte body ({elapsed_ms} ms)",
            **common,
        )
    elif 300 <= code < 400:
        error = KwikIDRejectedError(
            f"KwikID answered with a redirect (HTTP {code}), which is not followed ({elapsed_ms} ms)",
            detail=detail,
            message=message,
            **common,
        )
    else:
        error = KwikIDRejectedError(
            f"KwikID rejected the {what}: HTTP {code}, {entries} ({elapsed_ms} ms)",
            detail=detail,
            message=message,
            **common,
        )
    return error
