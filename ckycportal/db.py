"""Database helpers the ORM lacks."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from psycopg.types.json import Jsonb


@contextlib.contextmanager
def atomic_async_commit() -> Iterator[None]:
    """``transaction.atomic()`` whose COMMIT does not wait for the disk: PostgreSQL's asynchronous commit
    (``synchronous_commit`` off for this transaction alone). It saves a WAL flush, about a millisecond, and
    a crash of the database server in the next fraction of a second would undo the transaction.

    Only for work of two kinds together: losing it in such a crash is harmless (it is redone from the rows
    before it), and nothing outside the database acts on it until a later, ordinary commit. That commit
    writes the WAL in order, so it makes this transaction durable first. Inside an outer transaction it is
    a plain savepoint: the outer commit decides. Elsewhere than PostgreSQL, ``atomic()`` as it is.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield


def _json_value(value: Any) -> Any:
    if isinstance(value, Jsonb):  # a JSONField's prepared value: its document goes in as it is
        return value.obj
    if isinstance(value, date | datetime | time):
        return value.isoformat()  # read back exactly by the column's type (microseconds and offset kept)
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form here")


def _recordset(
    db: BaseDatabaseWrapper, fields: Sequence[models.Field[Any, Any]], columns: Sequence[Sequence[Any]]
) -> tuple[str, str]:
    """PostgreSQL rows from one JSON parameter: ``json_to_recordset(%s::json) AS v(c0 type, c1 type, …)``
    and the parameter, from ``columns`` (one list of prepared values per field, in ``fields``' order).

    One parameter, not an array per column: psycopg quotes each element of an array parameter in Python
    (about 2.5 µs a value), while json.dumps turns the whole batch into one string in C (about 0.8 µs a
    value, measured on 50 rows of 7 columns)."""
    names = [f"c{i}" for i in range(len(fields))]
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    definition = ", ".join(
        f"{name} {field.cast_db_type(db)}" for name, field in zip(names, fields, strict=True)
    )
    return f"json_to_recordset(%s::json) AS v({definition})", json.dumps(rows, default=_json_value)


def update_each(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``fields`` of many rows, each to its own values: ``rows`` holds (pk, value, …) in ``fields``'
    order, each pk once. Values go through each field's own preparation (encryption included).

    On PostgreSQL one statement, ``UPDATE … FROM json_to_recordset(…)``: for 50 rows PostgreSQL takes half
    the time of 50 single-row UPDATEs (one statement to parse and plan, not 50). Elsewhere one ``UPDATE …
    WHERE pk = %s`` per row, sent with ``executemany``. Django's ``bulk_update`` builds a CASE per field and
    row instead: for 50 rows of 7 fields its Python costs some 40 ms, far more than the statements."""
    if not rows:
        return
    if len({row[0] for row in rows}) != len(rows):
        raise ValueError("update_each sets each row once: a primary key is repeated")
    db = connections[DEFAULT_DB_ALIAS]  # not the thread-local proxy: one look-up, not one per value
    meta = model._meta
    quote = db.ops.quote_name
    prepared_fields = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    assert isinstance(meta.pk, models.Field)
    pk_column = quote(str(meta.pk.column))
    columns = [quote(str(field.column)) for field in prepared_fields]
    values = [
        [field.get_db_prep_save(row[i], db) for row in rows] for i, field in enumerate(prepared_fields, 1)
    ]
    # Identifiers come from the model's meta and every value is a bound parameter (hence the noqa).
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            source, parameter = _recordset(
                db, [meta.pk, *prepared_fields], [[row[0] for row in rows], *values]
            )
            assignments = ", ".join(f"{column} = v.c{i}" for i, column in enumerate(columns, 1))
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
                f"FROM {source} WHERE t.{pk_column} = v.c0",
                [parameter],
            )
            return
        assignments = ", ".join(f"{column} = %s" for column in columns)
        cursor.executemany(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {pk_column} = %s",  # noqa: S608
            [[*(column[n] for column in values), row[0]] for n, row in enumerate(rows)],
        )


def insert_each(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert one row of ``model`` per item of ``rows`` (values in ``fields``' order); every other field
    takes its default, the same for every row (``auto_now``/``auto_now_add``: the time of the insert).
    Values go through each field's preparation.

    For rows written by the thousand in the workers' hot paths: on PostgreSQL one ``INSERT … SELECT FROM
    json_to_recordset(…)``, without a model instance per row or a placeholder per value (``bulk_create``
    spends more Python on those than PostgreSQL spends on the rows). No ids are returned. Elsewhere
    ``bulk_create``."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    given = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    now = timezone.now()
    defaults = {
        field: now
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        else field.get_default()
        for field in meta.concrete_fields
        if field not in given and not field.primary_key
    }
    if unique := [field.name for field in defaults if field.unique]:
        raise ValueError(f"insert_each gives every row the same default: pass {', '.join(unique)}")
    if db.vendor != "postgresql":
        model._default_manager.bulk_create(
            model(**{field.attname: value for field, value in zip(given, row, strict=True)}) for row in rows
        )
        return
    quote = db.ops.quote_name
    source, parameter = _recordset(
        db, given, [[field.get_db_prep_save(row[i], db) for row in rows] for i, field in enumerate(given)]
    )
    # The defaults are one parameter each, the same for every row.
    constants = [field.get_db_prep_save(value, db) for field, value in defaults.items()]
    selected = [f"v.c{i}" for i in range(len(given))] + [
        f"%s::{field.cast_db_type(db)}" for field in defaults
    ]
    columns = ", ".join(quote(str(field.column)) for field in [*given, *defaults])
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {', '.join(selected)} FROM {source}",
            [*constants, parameter],
        )
