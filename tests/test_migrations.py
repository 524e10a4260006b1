from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_model_change_has_a_migration() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"Models changed without a migration (exit {exc.code}):\n{out.getvalue()}")


# The tables every upload, registry check or import writes to: each index costs every write an entry.
WRITE_PATH_TABLES = (
    "records_kycrecord",
    "records_recordevent",
    "uploads_uploadbatch",
    "uploads_batchitem",
    "uploads_uploadattempt",
    "registry_registrycheck",
    "registry_searchattempt",
    "registry_searchday",
)


@pytest.mark.django_db
def test_no_index_on_the_write_path_is_served_by_another() -> None:
    """A plain index whose columns lead another index (the same columns included) finds nothing the other
    cannot, and only adds a write per row: Django's defaults (a foreign key's index, db_index and its LIKE
    twin) repeated unique constraints and composite indexes here before."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's catalogue")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, c.relname, i.indisunique, i.indpred IS NOT NULL OR i.indexprs IS NOT NULL,
                   array_to_string(i.indkey, ' ')
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s)
            """,
            [list(WRITE_PATH_TABLES)],
        )
        indexes = cursor.fetchall()
    assert {table for table, *_ in indexes} == set(WRITE_PATH_TABLES)
    repeated = [
        (name, other)
        for table, name, unique, special, columns in indexes
        if not unique and not special
        for other_table, other, _unique, other_special, other_columns in indexes
        if other_table == table
        and other != name
        and not other_special
        and (other_columns + " ").startswith(columns + " ")
    ]
    assert repeated == []
