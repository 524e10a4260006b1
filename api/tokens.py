"""API tokens: made once, shown once, kept only as a hash.

A token is ``ckyc_`` + 43 URL-safe characters (256 random bits). Its SHA-256 is what the database keeps and
what a request's token is looked up by; the first characters (``prefix``) tell tokens apart on the pages.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ckyc_"
_SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_prefix(token: str) -> str:
    return token[:_SHOWN_PREFIX_LENGTH]
