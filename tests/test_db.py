"""The database helpers of ckycportal.db that the tests of their callers do not show alone."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from ckycportal.db import atomic_async_commit
from institutions.models import Institution

pytestmark = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def test_async_commit_is_for_its_own_transaction_alone() -> None:
    assert synchronous_commit() == "on"
    with atomic_async_commit():
        assert synchronous_commit() == "off"
        Institution.objects.create(name="Async Bank", fi_code="IN9999")
    # Committed, and the next transaction waits for the disk again.
    assert Institution.objects.filter(name="Async Bank").exists()
    with transaction.atomic():
        assert synchronous_commit() == "on"


def test_inside_an_outer_transaction_the_outer_commit_decides() -> None:
    with transaction.atomic():
        with atomic_async_commit():
            assert synchronous_commit() == "on"
        assert synchronous_commit() == "on"


def test_an_error_rolls_it_back_like_atomic() -> None:
    with pytest.raises(RuntimeError), atomic_async_commit():
        Institution.objects.create(name="Lost Bank", fi_code="IN9998")
        raise RuntimeError("boom")
    assert not Institution.objects.filter(name="Lost Bank").exists()
    assert synchronous_commit() == "on"
