"""The import's writer: prepared rows become KycRecords with their name tokens and RecordEvents, as
``record_create`` (and ``record_submit``) would write them.

On PostgreSQL it writes with COPY: ``RecordLines`` formats each record as a line of COPY's text format
(its PII encrypted as the model's fields encrypt it, in the engine's stage, so in the worker processes),
``CopyTable`` holds each table's columns and the part of a line every row shares, and the writer draws the
records' ids from their sequence so that tokens and events can point at them. Elsewhere (SQLite on
`make run`) the same rows go through ``bulk_create``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from ckycportal import crypto
from ckycportal.fields import EncryptedTextField
from institutions.models import Branch, User
from kwikid.fields import FIELDS
from records.models import KycRecord, RecordEvent, RecordNameToken, Status
from records.services import due_on, name_tokens

from .rows import PreparedRow


class RecordWriter:
    """Writes prepared rows as KycRecords plus their RecordEvents, as record_create (+ record_submit)."""

    def __init__(
        self, *, actor: User, default_branch: Branch, branches: dict[str, int], submit: bool
    ) -> None:
        self.actor = actor
        self.default_branch_id = default_branch.pk
        self.branches = branches
        self.submit = submit
        self.now = timezone.now()
        self.institutions = {
            b.pk: b.institution
            for b in Branch.objects.filter(pk__in=[default_branch.pk, *branches.values()]).select_related(
                "institution"
            )
        }
        self.lines: RecordLines | None = None
        if connection.vendor == "postgresql":
            self.lines = RecordLines(self)
            self.tokens = CopyTable(RecordNameToken, ["record", "token_hash"], {})
            self.events = [
                CopyTable(RecordEvent, ["record"], {k: v for k, v in event.items() if k != "record"})
                for event in self._events(0)
            ]

    def _fixed(self) -> dict[str, Any]:
        """Workflow fields every imported record gets (record_create, then record_submit if asked)."""
        fixed: dict[str, Any] = {
            "created_by": self.actor.pk,
            "status": Status.DRAFT,
            "created_at": self.now,
            "updated_at": self.now,
        }
        if self.submit:
            fixed.update(
                status=Status.SUBMITTED, submitted_by=self.actor.pk, submitted_at=self.now, return_reason=""
            )
        return fixed

    def _events(self, record_id: int) -> Iterator[dict[str, Any]]:
        base = {"record": record_id, "actor": self.actor.pk, "reason": "", "created_at": self.now}
        yield {**base, "action": RecordEvent.Action.CREATED, "from_status": "", "to_status": Status.DRAFT}
        if self.submit:
            yield {
                **base,
                "action": RecordEvent.Action.SUBMITTED,
                "from_status": Status.DRAFT,
                "to_status": Status.SUBMITTED,
            }

    def branch_id(self, row: PreparedRow) -> int:
        # A code not among the actor's branches blocks the row (the engine checks it): it is never written.
        return self.branches.get(row.branch_code, self.default_branch_id)

    def due(self, branch_id: int, verified_on: date | None) -> date | None:
        return due_on(
            institution=self.institutions[branch_id], verified_on=verified_on, updates_existing=False
        )

    def write(self, rows: list[PreparedRow]) -> int:
        if not rows:
            return 0
        if self.lines is not None:
            return self._copy(rows)
        fixed = self._fixed()
        records = []
        for row in rows:
            branch_id = self.branch_id(row)
            due = self.due(branch_id, row.values.get("kyc_verification_date"))
            records.append({**row.values, **fixed, "branch": branch_id, "upload_due_on": due})
        objects = KycRecord.objects.bulk_create(
            KycRecord(**{_attname(KycRecord, k): v for k, v in values.items()}) for values in records
        )
        ids = [obj.pk for obj in objects]
        RecordNameToken.objects.bulk_create(
            RecordNameToken(record_id=pk, token_hash=token)
            for pk, values in zip(ids, records, strict=True)
            for token in sorted(
                name_tokens(f"{values['applicant_first_name']} {values['applicant_middle_name']}")
            )
        )
        # Every creation event first, then every submission: ordered by (created_at, id) as in the services.
        events = [event for pk in ids for event in self._events(pk) if event["action"] == "created"]
        events += [event for pk in ids for event in self._events(pk) if event["action"] == "submitted"]
        RecordEvent.objects.bulk_create(
            RecordEvent(**{_attname(RecordEvent, k): v for k, v in event.items()}) for event in events
        )
        return len(ids)

    def _copy(self, rows: list[PreparedRow]) -> int:
        """COPY of the lines the stage prepared: ids first drawn from the records' own sequence, so that
        tokens and events can point at their records."""
        assert self.lines is not None
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [KycRecord._meta.db_table, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            self.lines.table.copy(
                cursor, "".join(f"{pk}\t{row.line}" for pk, row in zip(ids, rows, strict=True))
            )
            suffix = self.tokens.suffix
            self.tokens.copy(
                cursor,
                "".join(
                    f"{pk}\t{token}{suffix}"
                    for pk, row in zip(ids, rows, strict=True)
                    for token in row.tokens
                ),
            )
            # Every creation event first, then every submission: ordered by (created_at, id) as in the
            # services.
            for events in self.events:
                suffix = events.suffix
                events.copy(cursor, "".join(f"{pk}{suffix}" for pk in ids))
        return len(ids)


def _attname(model: type[Any], name: str) -> str:
    return str(model._meta.get_field(name).attname)


# COPY's text format: these characters are written as backslash escapes, NULL as \N.
COPY_SPECIAL = re.compile(r"[\\\t\n\r\x08\x0b\x0c]")
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x08": "\\b", "\x0b": "\\v", "\x0c": "\\f"}
)


def copy_text(value: Any) -> str:
    """A value as a column of a COPY text line, as psycopg's write_row would send it."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES) if COPY_SPECIAL.search(value) else value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, date):  # datetimes too (aware: they keep their offset)
        return value.isoformat()
    return copy_text(str(value))


def copy_field(field: Field[Any, Any], value: Any) -> str:
    """A model field's value prepared as for an INSERT, as a COPY column."""
    if isinstance(field, EncryptedTextField):
        return copy_text(field.get_prep_value(value))
    if field.get_internal_type() == "JSONField":
        return copy_text(json.dumps(value))
    return copy_text(value)


class CopyTable:
    """COPY into a model's table of lines whose first columns (``varying``) each row gives; every other
    column is the same for the whole import (``constants``, else the field's default, so a field added to
    the model later needs no change here), formatted once as the lines' ``suffix``."""

    def __init__(
        self, model: type[Any], varying: list[str], constants: dict[str, Any], *, with_pk: bool = False
    ) -> None:
        fields: list[Field[Any, Any]] = [f for f in model._meta.concrete_fields if not f.primary_key]
        by_name = {f.name: f for f in fields}
        rest = [f for f in fields if f.name not in varying]
        values = []
        for f in rest:
            if f.name in constants:
                values.append(copy_field(f, constants[f.name]))
            else:
                assert not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)), f.name
                values.append(copy_field(f, f.get_default()))
        self.suffix = "".join(f"\t{value}" for value in values) + "\n"
        quote = connection.ops.quote_name
        pk = [model._meta.pk.column] if with_pk else []
        columns = [*pk, *(by_name[name].column for name in varying), *(f.column for f in rest)]
        self.sql = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
        self.fields = [by_name[name] for name in varying]

    def copy(self, cursor: Any, text: str) -> None:
        if text:
            with cursor.cursor.copy(self.sql) as copy:
                copy.write(text)


_ENCRYPTED, _ENCRYPTED_OTHER, _PLAIN = 1, 2, 3


class RecordLines:
    """Records as COPY lines without their ids, made by the stage (in the workers): the file's fields,
    encrypted as the model's fields encrypt them, the PAN's hash, branch and deadline, then the workflow
    fields every imported record shares."""

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer
        varying = [*FIELDS, "pan_hash", "branch", "upload_due_on"]
        self.table = CopyTable(KycRecord, varying, writer._fixed(), with_pk=True)
        self.kinds = []
        for f in self.table.fields:
            if type(f) is EncryptedTextField:
                kind = _ENCRYPTED
            elif isinstance(f, EncryptedTextField):
                kind = _ENCRYPTED_OTHER  # a date: the field makes its text
            else:
                assert f.get_internal_type() != "JSONField", f.name
                kind = _PLAIN
            self.kinds.append((f.name, f, kind))

    def format(self, row: PreparedRow) -> tuple[str, tuple[str, ...]]:
        values = row.values
        branch_id = self.writer.branch_id(row)
        extra = {
            "pan_hash": row.pan_hash,
            "branch": branch_id,
            "upload_due_on": self.writer.due(branch_id, values.get("kyc_verification_date")),
        }
        parts: list[str] = []
        secret_at: list[int] = []
        secrets: list[str] = []
        text_at: list[int] = []
        for name, f, kind in self.kinds:
            value = values[name] if name in values else extra[name]
            if value.__class__ is str:  # nearly every column: checked for escapes once, below
                if kind is _ENCRYPTED and value:
                    secret_at.append(len(parts))
                    secrets.append(value)
                else:
                    text_at.append(len(parts))
                parts.append(value)
            elif kind is _PLAIN or value is None:
                parts.append(copy_text(value))
            else:
                text = f.to_plain(value)  # type: ignore[attr-defined]
                if text:
                    secret_at.append(len(parts))
                    secrets.append(text)
                parts.append(copy_text(text))
        if COPY_SPECIAL.search("".join([parts[at] for at in text_at])):
            for at in text_at:  # a backslash (or worse) in some value
                parts[at] = copy_text(parts[at])
        for at, sealed in zip(secret_at, crypto.encrypt_many(secrets), strict=True):
            parts[at] = sealed  # base64 and "v2:": nothing to escape
        tokens = tuple(
            sorted(name_tokens(f"{values['applicant_first_name']} {values['applicant_middle_name']}"))
        )
        return "\t".join(parts) + self.table.suffix, tokens
