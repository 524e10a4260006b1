"""Encryption of PII at rest and the keyed hash used to find a PAN without storing it in clear.

Keys come from FIELD_ENCRYPTION_KEYS (Fernet keys, newest first) and PII_HASH_KEY, never from SECRET_KEY.
New values are encrypted with the newest key; any listed key decrypts, so keys rotate without losing rows
(``manage.py rotate_encryption_keys`` re-encrypts everything with the newest).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key (the message holds no data)."""


@functools.cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.FIELD_ENCRYPTION_KEYS])


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    if setting in ("FIELD_ENCRYPTION_KEYS", "PII_HASH_KEY"):
        _fernet.cache_clear()


def encrypt(text: str) -> str:
    """Ciphertext of ``text`` under the newest key (random IV: equal values give different ciphertexts)."""
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text of a value encrypted under any configured key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored value could not be decrypted with any configured key.") from None


def rotate(token: str) -> str:
    """The same value re-encrypted under the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("A stored value could not be decrypted with any configured key.") from None


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of a normalised identifier: equal inputs match; without the key it reveals nothing."""
    normalised = "".join(value.split()).upper()
    return hmac.new(settings.PII_HASH_KEY.encode(), normalised.encode(), hashlib.sha256).hexdigest()
