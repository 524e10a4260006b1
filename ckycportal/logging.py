"""A logging filter that masks customer identifiers and bearer tokens in every record it sees.

Attached to the root handler in settings.LOGGING, so it covers every logger that propagates there (the
portal's, Django's, Celery's). Logs should carry ids only; this is the net for the line that forgot.
"""

from __future__ import annotations

import logging
import re

# Order matters: tokens first (their characters could look like anything), a KIN's 14 digits and Aadhaar's
# 12 before a mobile number's 10.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bBearer\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), "Bearer [REDACTED]"),
    (re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{5}[0-9]{4}[A-Za-z](?![A-Za-z0-9])"), "[PAN]"),
    (re.compile(r"(?<![0-9])[0-9]{14}(?![0-9])"), "[KIN]"),
    (re.compile(r"(?<![0-9+])[0-9]{4}([ -]?)[0-9]{4}\1[0-9]{4}(?![0-9])"), "[AADHAAR]"),
    (re.compile(r"(?<![0-9+])(?:(?:\+|00)?91[ -]?|0)?[6-9][0-9]{9}(?![0-9])"), "[MOBILE]"),
)


def redact(text: str) -> str:
    """``text`` with PAN-, KIN-, Aadhaar- and Indian-mobile-like strings and bearer tokens replaced."""
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactPIIFilter(logging.Filter):
    """Rewrites a record's message (with its arguments merged in), exception text and stack in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, redacted, for the reader
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
