"""ckycportal.logging: PAN-, Aadhaar- and mobile-like strings and bearer tokens never reach a log line."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from ckycportal.logging import RedactPIIFilter, redact


def emit(message: str, *args: object, exc: BaseException | None = None) -> str:
    """What a handler with the filter writes for one record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPIIFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    # A logger outside logging's registry: no parent, and no handler that pytest attaches to registered ones.
    logger = logging.Logger("tests.redaction")
    logger.addHandler(handler)
    if exc is None:
        logger.warning(message, *args)
    else:
        try:
            raise exc
        except BaseException:
            logger.exception(message, *args)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PAN ABCDE1234F rejected", "PAN [PAN] rejected"),
        ("pan=abcde1234f", "pan=[PAN]"),
        ("aadhaar 234567890123", "aadhaar [AADHAAR]"),
        ("aadhaar 2345 6789 0123", "aadhaar [AADHAAR]"),
        ("aadhaar 2345-6789-0123", "aadhaar [AADHAAR]"),
        ("mobile 9876543210", "mobile [MOBILE]"),
        ("mobile +91 9876543210", "mobile [MOBILE]"),
        ("mobile +919876543210", "mobile [MOBILE]"),
        ("mobile 09876543210", "mobile [MOBILE]"),
        ("KIN 12345678901234 found", "KIN [KIN] found"),
        ("Authorization: Bearer abc.DEF-123_xyz~+/=", "Authorization: Bearer [REDACTED]"),
        ("authorization: bearer s3cr3t-t0ken", "authorization: Bearer [REDACTED]"),
    ],
)
def test_redact_masks_identifiers_and_tokens(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "batch 42 sent 17 records",
        "record 1234567890",  # 10 digits that are not a mobile number (starts with 1)
        "took 1234567890123 ns",  # 13 digits: neither a KIN, Aadhaar nor mobile
        "REF-BRA-000001 uploaded",
        "request id 3f2c9a1e-7b44-4c1d-9e0f-1a2b3c4d5e6f",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_filter_redacts_the_arguments_merged_into_the_message() -> None:
    line = emit("record %s: PAN %s mobile %s", 7, "ABCDE1234F", "9876543210")

    assert line.strip() == "record 7: PAN [PAN] mobile [MOBILE]"


def test_filter_redacts_mapping_arguments() -> None:
    line = emit("sent with %(auth)s", {"auth": "Bearer tok-123"})

    assert line.strip() == "sent with Bearer [REDACTED]"


def test_filter_redacts_the_exception_and_its_traceback() -> None:
    line = emit("upload failed", exc=ValueError("PAN ABCDE1234F is duplicated for 2345 6789 0123"))

    assert "ABCDE1234F" not in line and "2345 6789 0123" not in line and "[PAN] is duplicated" in line


def test_filter_keeps_a_record_whose_arguments_do_not_fit_the_format() -> None:
    line = emit("two slots %s %s", "ABCDE1234F")

    assert "ABCDE1234F" not in line and "two slots" in line


def test_every_handler_of_the_configured_logging_redacts() -> None:
    """settings.LOGGING: whatever logger a line goes to (Django's request and server logs, Celery's, the
    portal's), every handler that writes it carries the filter."""
    names = ["", "django", "django.request", "django.server", "celery.app.trace", "uploads.services"]
    handlers = set()
    for name in names:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            handlers.update(
                h
                for h in logger.handlers
                if not type(h).__module__.startswith("_pytest") and not isinstance(h, logging.NullHandler)
            )
            logger = logger.parent if logger.propagate else None

    assert handlers and all(any(isinstance(f, RedactPIIFilter) for f in h.filters) for h in handlers)


def test_console_output_of_the_configured_logging_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    handler = next(h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest"))
    assert isinstance(handler, logging.StreamHandler)
    old_stream = handler.setStream(sys.stderr)  # capsys replaced sys.stderr after logging was configured
    try:
        logging.getLogger("django.request").warning("Not Found: /records/?pan=ABCDE1234F")
    finally:
        handler.setStream(old_stream)

    err = capsys.readouterr().err
    assert "/records/?pan=[PAN]" in err and "ABCDE1234F" not in err
