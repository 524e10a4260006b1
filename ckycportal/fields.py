"""Model fields whose values are encrypted at rest (see ckycportal/crypto.py).

The database holds ciphertext (crypto.py's v2 tokens; older rows Fernet) in a text column; Python sees
plain values. Such a column cannot be searched, compared or ordered in SQL: search by a keyed hash column
instead (e.g. ``pan_hash``).
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db import models
from django.utils.text import capfirst

from . import crypto


class EncryptedTextField(models.TextField):
    """A string encrypted at rest. ``max_length`` limits the plain text (in forms and validation)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return self.from_plain(crypto.decrypt(value))

    def get_prep_value(self, value: Any) -> Any:
        text = self.to_plain(value)
        if text is None or text == "":
            return text
        return crypto.encrypt(text)

    def to_plain(self, value: Any) -> str | None:
        """The value as the text that is encrypted."""
        return super().get_prep_value(value)  # type: ignore[no-any-return]

    def from_plain(self, text: str) -> Any:
        """The Python value back from the decrypted text."""
        return text

    def formfield(self, **kwargs: Any) -> Any:
        # A one-line input, as for the CharField it replaces (TextField would give a textarea).
        if not self.choices:
            kwargs.setdefault("widget", forms.TextInput)
        return super().formfield(**kwargs)


class EncryptedDateField(EncryptedTextField):
    """A date encrypted at rest (stored as its ISO text, encrypted)."""

    def from_plain(self, text: str) -> datetime.date:
        return datetime.date.fromisoformat(text)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, datetime.date):
            return value
        return datetime.date.fromisoformat(str(value)) if value else None

    def to_plain(self, value: Any) -> str | None:
        value = self.to_python(value)
        return value.isoformat() if value is not None else None

    def formfield(self, **kwargs: Any) -> Any:
        defaults: dict[str, Any] = {
            "required": not self.blank,
            "label": capfirst(self.verbose_name),
            "help_text": self.help_text,
        }
        defaults.update(kwargs)
        defaults.pop("max_length", None)
        return forms.DateField(**defaults)
