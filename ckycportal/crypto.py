"""Encryption of PII at rest and the keyed hash used to find a PAN without storing it in clear.

Keys come from FIELD_ENCRYPTION_KEYS (Fernet keys, newest first) and PII_HASH_KEY, never from SECRET_KEY.
New values are encrypted with the newest key; any listed key decrypts, so keys rotate without losing rows
(``manage.py rotate_encryption_keys`` re-encrypts everything with the newest).

Two token formats, told apart by their first characters:

- ``v2:`` + base64url(key id, nonce, AES-256-GCM ciphertext and tag): what ``encrypt`` writes. Each listed
  key gives an AES key by HKDF-SHA256 (so the configuration is unchanged) and a 4-byte id, so a token is
  opened with its own key at once. The header is authenticated (associated data). Decrypting one costs
  about a sixth of a Fernet token: the upload worker decrypts 14 values per record.
- Fernet (``gAAAAA…``): what the portal wrote before; still read with the same keys, and turned into v2 by
  ``rotate`` (so ``rotate_encryption_keys`` converts every row).

Nonces are 96 random bits: keep well under 2**32 encryptions per key (about 300 million record saves at
14 values each) by rotating keys long before that.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

V2_PREFIX = "v2:"
_V2_HEADER = V2_PREFIX.encode()
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HKDF_INFO = b"ckycportal field encryption v2: AES-256-GCM"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key (the message holds no data)."""


@dataclass(frozen=True)
class _Keys:
    fernet: MultiFernet
    newest_id: bytes
    newest: AESGCM
    by_id: dict[bytes, list[AESGCM]]


def _aes_key(fernet_key: str) -> bytes:
    raw = base64.urlsafe_b64decode(fernet_key.encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)


def _key_id(aes_key: bytes) -> bytes:
    return hashlib.sha256(b"ckycportal key id\0" + aes_key).digest()[:_KEY_ID_BYTES]


@functools.cache
def _keys() -> _Keys:
    configured = list(settings.FIELD_ENCRYPTION_KEYS)
    fernet = MultiFernet([Fernet(key.encode()) for key in configured])  # also validates every key
    by_id: dict[bytes, list[AESGCM]] = {}
    ids = []
    for key in configured:
        aes_key = _aes_key(key)
        ids.append(_key_id(aes_key))
        by_id.setdefault(ids[-1], []).append(AESGCM(aes_key))
    return _Keys(fernet=fernet, newest_id=ids[0], newest=by_id[ids[0]][0], by_id=by_id)


def _fernet() -> MultiFernet:
    """The configured keys as a MultiFernet, for bytes that are not model fields (bulkdata's stored files)."""
    return _keys().fernet


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    if setting in ("FIELD_ENCRYPTION_KEYS", "PII_HASH_KEY"):
        _keys.cache_clear()


def encrypt(text: str) -> str:
    """Ciphertext of ``text`` under the newest key (random nonce: equal values give different ciphertexts)."""
    keys = _keys()
    nonce = os.urandom(_NONCE_BYTES)
    header = _V2_HEADER + keys.newest_id
    sealed = keys.newest.encrypt(nonce, text.encode(), header)
    return V2_PREFIX + base64.urlsafe_b64encode(keys.newest_id + nonce + sealed).decode()


def encrypt_many(texts: list[str]) -> list[str]:
    """``encrypt`` of each text, for bulk writes: one call for all the nonces instead of one per value
    (the same random 96-bit nonces: slices of one read of the operating system's generator)."""
    keys = _keys()
    nonces = os.urandom(_NONCE_BYTES * len(texts))
    key_id, seal = keys.newest_id, keys.newest.encrypt
    header = _V2_HEADER + key_id
    b64 = binascii.b2a_base64  # base64.urlsafe_b64encode without its two Python calls a value
    return [
        V2_PREFIX
        + b64(key_id + nonce + seal(nonce, text.encode(), header), newline=False)
        .translate(_TO_URLSAFE)
        .decode()
        for nonce, text in zip(
            (nonces[i : i + _NONCE_BYTES] for i in range(0, len(nonces), _NONCE_BYTES)), texts, strict=True
        )
    ]


def _failed() -> DecryptionError:
    return DecryptionError("A stored value could not be decrypted with any configured key.")


def decrypt(token: str) -> str:
    """The plain text of a value encrypted under any configured key (either format)."""
    keys = _keys()
    if not token.startswith(V2_PREFIX):
        try:
            return keys.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise _failed() from None
    try:
        # Strict: a character outside the alphabet is an error, not skipped (as b64decode would).
        raw = binascii.a2b_base64(
            token[len(V2_PREFIX) :].encode("ascii").translate(_FROM_URLSAFE), strict_mode=True
        )
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        raise _failed() from None
    key_id = raw[:_KEY_ID_BYTES]
    nonce = raw[_KEY_ID_BYTES : _KEY_ID_BYTES + _NONCE_BYTES]
    sealed = raw[_KEY_ID_BYTES + _NONCE_BYTES :]
    if len(sealed) < _TAG_BYTES:
        raise _failed()
    for aes in keys.by_id.get(key_id, ()):
        try:
            return aes.decrypt(nonce, sealed, _V2_HEADER + key_id).decode()
        except InvalidTag:
            continue
    raise _failed()


def rotate(token: str) -> str:
    """The same value re-encrypted under the newest key, as a v2 token (a Fernet token is converted)."""
    return encrypt(decrypt(token))


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of a normalised identifier: equal inputs match; without the key it reveals nothing."""
    normalised = "".join(value.split()).upper()
    # hmac.digest: the same HMAC in one C call (an import hashes the PAN and each name word of every row).
    return hmac.digest(settings.PII_HASH_KEY.encode(), normalised.encode(), "sha256").hex()
