"""People's words for what the upload machinery stores in developer's terms (error class names, timings).

Display only: the stored attempt and batch fields keep their exact text for support; these filters say the
same thing to an admin or a maker reading the batch pages.
"""

from __future__ import annotations

import re

from django import template

from kwikid.fields import FIELD_LABELS

register = template.Library()

ERROR_WORDS = {
    "KwikIDServerError": "KwikID server error",
    "KwikIDRateLimitedError": "KwikID asked the portal to slow down",
    "KwikIDAuthError": "KwikID refused the token",
    "KwikIDRejectedError": "KwikID rejected the upload",
    "KwikIDConnectError": "Could not connect to KwikID; nothing was sent",
    "KwikIDTransientError": "KwikID could not be reached",
    "KwikIDUnknownOutcomeError": "KwikID's answer was lost; it may have accepted the upload",
    "KwikIDError": "The request to KwikID could not be sent",
    "WorkerLost": "The worker stopped while sending; KwikID may have received it",
}
# "KwikIDServerError: KwikID failed: HTTP 503, 152-byte body (4 ms)", alone or after "Last error: ".
_CLASS_AND_TEXT = re.compile(r"\b(?P<cls>KwikID\w*Error|WorkerLost)\b(?::\s*(?P<text>.*))?", re.DOTALL)
_HTTP = re.compile(r"\bHTTP (\d{3})\b")
_NOTHING_SENT = re.compile(r"nothing was sent", re.IGNORECASE)
_TOKEN_ADVICE = re.compile(r"\s*Replace the token[^.]*\.\s*$")


def _words(cls: str, text: str, status_code: int | None) -> str:
    words = ERROR_WORDS.get(cls, cls)
    code = _HTTP.search(text)
    status = code.group(1) if code else (str(status_code) if status_code else "")
    if status:
        return f"{words} (HTTP {status})"
    if cls == "KwikIDAuthError" and _NOTHING_SENT.search(text):
        # No answer at all: the token is missing or malformed, which the class name alone does not say.
        return "No usable KwikID token is set; nothing was sent"
    return words


@register.filter
def kwikid_words(value: object, status_code: int | None = None) -> str:
    """'HTTP 503 KwikIDServerError: KwikID failed: HTTP 503, 152-byte body (4 ms)' ->
    'KwikID server error (HTTP 503)'; text without an error class name is returned as it is."""
    text = "" if value is None else str(value)
    match = _CLASS_AND_TEXT.search(text)
    if match is None:
        return text
    prefix = text[: match.start()].strip()
    words = _words(match.group("cls"), match.group("text") or "", status_code)
    return f"{prefix} {words}." if prefix else words


@register.filter
def attempt_error_words(error_class: object, status_code: int | None = None) -> str:
    """An attempt's stored error class in words ('' for none), with its HTTP status when it had one."""
    cls = "" if error_class is None else str(error_class)
    return _words(cls, "", status_code) if cls else ""


@register.filter
def without_token_advice(value: object) -> str:
    """A pause reason without its closing 'Replace the token ...' sentence (the banner links to it)."""
    return _TOKEN_ADVICE.sub("", "" if value is None else str(value))


# "poa.poa_vtc: Unknown city", "records[0].pan: invalid", "pan: PAN does not match": a field path, then text.
_FIELD_PATH = re.compile(r"^(?P<path>[A-Za-z_][\w.\[\]/]*): (?P<text>.*)$", re.DOTALL)
_PATH_PARTS = re.compile(r"[.\[\]/]+")


@register.filter
def kwikid_field_words(value: object) -> str:
    """KwikID's reasons with the form's labels for the fields they name: 'poa.poa_vtc: Unknown city' ->
    'City, town or village: Unknown city'. Parts are the '; '-joined messages the portal stores; a part
    whose path ends in no field of the record is shown as it is."""
    parts = []
    for part in ("" if value is None else str(value)).split("; "):
        match = _FIELD_PATH.match(part)
        if match:
            names = [p for p in _PATH_PARTS.split(match.group("path")) if p]
            label = FIELD_LABELS.get(names[-1]) if names else None
            if label:
                part = f"{label}: {match.group('text')}"
        parts.append(part)
    return "; ".join(parts)
