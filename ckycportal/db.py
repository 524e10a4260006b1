"""Database helpers the ORM lacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone


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


def update_each(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``fields`` of many rows, each to its own values: ``rows`` holds (pk, value, …) in ``fields``'
    order, each pk once. Values go through each field's own preparation (encryption included).

    On PostgreSQL one statement, ``UPDATE … FROM unnest(…)`` with an array parameter per column: for 50
    rows it takes PostgreSQL half the time of 50 single-row UPDATEs (one statement to parse and plan, not
    50). Elsewhere one ``UPDATE … WHERE pk = %s`` per row, sent with ``executemany``. Django's
    ``bulk_update`` builds a CASE per field and row instead: for 50 rows of 7 fields its Python costs some
    40 ms, far more than the statements."""
    if not rows:
        return
    if len({row[0] for row in rows}) != len(rows):
        raise ValueError("update_each sets each row once: a primary key is repeated")
    db = connections[DEFAULT_DB_ALIAS]  # not the thread-local proxy: one look-up, not one per value
    meta = model._meta
    quote = db.ops.quote_name
    prepared_fields = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    assert meta.pk is not None
    pk_column = quote(str(meta.pk.column))
    columns = [quote(str(field.column)) for field in prepared_fields]
    values = [
        [field.get_db_prep_save(row[i], db) for row in rows] for i, field in enumerate(prepared_fields, 1)
    ]
    # Identifiers come from the model's meta and every value is a bound parameter (hence the noqa).
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            casts = ", ".join(f"%s::{field.cast_db_type(db)}[]" for field in [meta.pk, *prepared_fields])
            names = ", ".join(f"c{i}" for i in range(len(columns) + 1))
            assignments = ", ".join(f"{column} = v.c{i}" for i, column in enumerate(columns, 1))
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
                f"FROM unnest({casts}) AS v({names}) WHERE t.{pk_column} = v.c0",
                [[row[0] for row in rows], *values],
            )
            return
        assignments = ", ".join(f"{column} = %s" for column in columns)
        cursor.executemany(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {pk_column} = %s",  # noqa: S608
            [[*(column[n] for column in values), row[0]] for n, row in enumerate(rows)],
        )


def insert_each(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert one row of ``model`` per item of ``rows`` (values in ``fields``' order); every other field
    takes its default, the same for every row (``auto_now``/``auto_now_add``: now). Values go through
    each field's preparation.

    For rows written by the thousand in the workers' hot paths: on PostgreSQL one ``INSERT … SELECT FROM
    unnest(…)`` with an array parameter per column, without a model instance per row or a placeholder per
    value (``bulk_create`` spends more Python on those than PostgreSQL spends on the rows). No ids are
    returned. Elsewhere ``bulk_create``."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    given = [field for name in fields if isinstance(field := meta.get_field(name), models.Field)]
    now = timezone.now()
    defaults = {
        field: now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else None
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
    all_fields = [*given, *defaults]
    arrays = [[field.get_db_prep_save(row[i], db) for row in rows] for i, field in enumerate(given)]
    for field, value in defaults.items():
        constant = field.get_db_prep_save(value if value is not None else field.get_default(), db)
        arrays.append([constant] * len(rows))
    casts = ", ".join(f"%s::{field.cast_db_type(db)}[]" for field in all_fields)
    columns = ", ".join(quote(str(field.column)) for field in all_fields)
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT * FROM unnest({casts})",  # noqa: S608
            arrays,
        )
