"""Field encryption (ckycportal/crypto.py): v2 tokens (AES-256-GCM), old Fernet tokens still read, rotation.

A format change that made stored rows unreadable would be silent until production: the fixed tokens below
were written by this code and must always decrypt.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from ckycportal import crypto
from ckycportal.crypto import DecryptionError
from institutions.models import Branch, User
from records.models import KycRecord
from tests.conftest import new_record

OLD = "oT9ZQ6t3u9c1Q0m0lBvV6b7w3mQyq2d9rQ2lq0x8k5E="
NEW = "8m3Rz0x3Jb1cVQk2l7qkqWm2s9o0bJd5wKQ3t1f2eYk="
# encrypt("ABCPE1234F") under OLD, and encrypt("Ravi Kumar Śarmā") under NEW, by this module.
FIXED_OLD = "v2:HGHeIoilt9PmPzMo5M36V36bLdCYYyoAo4-vtrlnRrgy1qU2WXbQuoxV"
FIXED_NEW = "v2:E0MkN9f5RepInkJyHxVEN7SZu88LlRW9fSVuCvvuFLS75pO5OORrWuf16-9iAf0jVoo="


@pytest.fixture
def keys(settings: Any) -> Any:
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    return settings


def test_encrypt_writes_v2_tokens_that_read_back(keys: Any) -> None:
    for text in ("ABCPE1234F", "", "Ravi Kumar Śarmā", "x" * 5000):
        token = crypto.encrypt(text)
        assert token.startswith("v2:")
        assert text not in token or text == ""
        assert crypto.decrypt(token) == text


def test_equal_values_give_different_tokens(keys: Any) -> None:
    assert crypto.encrypt("ABCPE1234F") != crypto.encrypt("ABCPE1234F")


def test_encrypt_many_writes_the_tokens_encrypt_writes(keys: Any) -> None:
    texts = ["ABCPE1234F", "ABCPE1234F", "Ravi Kumar Śarmā", "x" * 5000]
    tokens = crypto.encrypt_many(texts)
    assert [crypto.decrypt(token) for token in tokens] == texts
    assert len({token for token in tokens}) == len(texts)  # each with its own nonce
    assert {token[:8] for token in tokens} == {crypto.encrypt("x")[:8]}  # v2, under the newest key
    assert crypto.encrypt_many([]) == []


def test_tokens_written_earlier_still_decrypt(keys: Any) -> None:
    assert crypto.decrypt(FIXED_OLD) == "ABCPE1234F"
    assert crypto.decrypt(FIXED_NEW) == "Ravi Kumar Śarmā"


def test_fernet_tokens_of_any_listed_key_still_decrypt(keys: Any) -> None:
    assert crypto.decrypt(Fernet(OLD.encode()).encrypt(b"9876543210").decode()) == "9876543210"
    assert crypto.decrypt(Fernet(NEW.encode()).encrypt(b"RAVI").decode()) == "RAVI"


def test_new_values_use_the_newest_key(keys: Any) -> None:
    token = crypto.encrypt("ABCPE1234F")
    keys.FIELD_ENCRYPTION_KEYS = [NEW]
    assert crypto.decrypt(token) == "ABCPE1234F"
    keys.FIELD_ENCRYPTION_KEYS = [OLD]
    with pytest.raises(DecryptionError):
        crypto.decrypt(token)


def test_rotate_turns_old_tokens_into_v2_under_the_newest_key(keys: Any) -> None:
    for old_token in (FIXED_OLD, Fernet(OLD.encode()).encrypt(b"ABCPE1234F").decode()):
        rotated = crypto.rotate(old_token)
        assert rotated.startswith("v2:")
        keys.FIELD_ENCRYPTION_KEYS = [NEW]  # the old key dropped after rotation
        assert crypto.decrypt(rotated) == "ABCPE1234F"
        with pytest.raises(DecryptionError):
            crypto.decrypt(old_token)
        keys.FIELD_ENCRYPTION_KEYS = [NEW, OLD]


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[index] ^= 0x01
    return "v2:" + base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: _flip(t, 0), id="key id"),
        pytest.param(lambda t: _flip(t, 5), id="nonce"),
        pytest.param(lambda t: _flip(t, 17), id="ciphertext"),
        pytest.param(lambda t: _flip(t, -1), id="tag"),
        pytest.param(lambda t: t[:-8], id="truncated"),
        pytest.param(lambda t: t[:20], id="shorter than a tag"),
        pytest.param(lambda t: t[:10] + "*" + t[10:], id="not base64"),
        pytest.param(lambda t: "v2:é" + t[4:], id="not ascii"),
        pytest.param(lambda t: "v3:" + t[3:], id="unknown version"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_a_tampered_token_is_refused_without_revealing_anything(keys: Any, tamper: Any) -> None:
    token = crypto.encrypt("ABCPE1234F-and-more-text")
    with pytest.raises(DecryptionError) as caught:
        crypto.decrypt(tamper(token))
    assert "ABCPE" not in str(caught.value)


def test_a_token_under_an_unlisted_key_is_refused(keys: Any) -> None:
    keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    stranger = crypto.encrypt("ABCPE1234F")
    keys.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    with pytest.raises(DecryptionError):
        crypto.decrypt(stranger)


def test_the_fernet_keys_stay_available_for_bytes(keys: Any) -> None:
    # bulkdata encrypts stored upload files with them.
    assert crypto._fernet().decrypt(crypto._fernet().encrypt(b"a,b\n1,2\n")) == b"a,b\n1,2\n"


@pytest.mark.django_db
def test_rows_with_fernet_values_read_and_rotation_converts_them(
    keys: Any, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    with connection.cursor() as cursor:  # as the portal wrote it before v2
        cursor.execute(
            "UPDATE records_kycrecord SET pan = %s WHERE id = %s",
            [Fernet(OLD.encode()).encrypt(b"ABCPE1234F").decode(), record.pk],
        )
    assert KycRecord.objects.get(pk=record.pk).pan == "ABCPE1234F"
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pan, applicant_first_name FROM records_kycrecord WHERE id = %s", [record.pk])
        pan, name = cursor.fetchone()
    assert pan.startswith("v2:") and name.startswith("v2:")
    keys.FIELD_ENCRYPTION_KEYS = [NEW]
    assert KycRecord.objects.get(pk=record.pk).pan == "ABCPE1234F"
