"""The database helpers of ckycportal.db that the tests of their callers do not show alone."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ckycportal.db import atomic_async_commit, insert_each, update_each
from institutions.models import Branch, Institution, User
from records.models import KycRecord, RecordEvent
from tests.conftest import approved_record

async_commit = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@async_commit
def test_async_commit_is_for_its_own_transaction_alone() -> None:
    assert synchronous_commit() == "on"
    with atomic_async_commit():
        assert synchronous_commit() == "off"
        Institution.objects.create(name="Async Bank", fi_code="IN9999")
    # Committed, and the next transaction waits for the disk again.
    assert Institution.objects.filter(name="Async Bank").exists()
    with transaction.atomic():
        assert synchronous_commit() == "on"


@async_commit
def test_inside_an_outer_transaction_the_outer_commit_decides() -> None:
    with transaction.atomic():
        with atomic_async_commit():
            assert synchronous_commit() == "on"
        assert synchronous_commit() == "on"


@async_commit
def test_an_error_rolls_it_back_like_atomic() -> None:
    with pytest.raises(RuntimeError), atomic_async_commit():
        Institution.objects.create(name="Lost Bank", fi_code="IN9998")
        raise RuntimeError("boom")
    assert not Institution.objects.filter(name="Lost Bank").exists()
    assert synchronous_commit() == "on"


@pytest.mark.django_db
def test_update_each_sets_each_row_to_its_own_values_in_one_statement(
    alice: User, bob: User, branch_a: Branch
) -> None:
    first, second, untouched = (approved_record(alice, bob, branch_a, n) for n in (1, 2, 3))
    at = timezone.now()
    rows = [
        (first.pk, "12345678901234", date(2026, 1, 2), at, "first"),
        (second.pk, "99999999999999", None, at - timedelta(days=1), ""),
    ]
    fields = ("ckyc_number", "registry_kyc_date", "registered_at", "registration_note")
    with CaptureQueriesContext(connection) as queries:
        update_each(KycRecord, fields, rows)
    assert len(queries) == 1
    got = {r.pk: r for r in KycRecord.objects.filter(pk__in=[first.pk, second.pk, untouched.pk])}
    assert (got[first.pk].ckyc_number, got[first.pk].registry_kyc_date) == (
        "12345678901234",
        date(2026, 1, 2),
    )
    assert (got[first.pk].registered_at, got[first.pk].registration_note) == (at, "first")
    assert (got[second.pk].ckyc_number, got[second.pk].registry_kyc_date) == ("99999999999999", None)
    assert got[second.pk].registered_at == at - timedelta(days=1)
    assert got[untouched.pk].ckyc_number == "" and got[untouched.pk].registered_at is None
    # Encrypted at rest, as the field's own preparation does it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT ckyc_number FROM records_kycrecord WHERE id = %s", [first.pk])
        assert "12345678901234" not in cursor.fetchone()[0]


@pytest.mark.django_db
def test_update_each_refuses_a_row_named_twice(alice: User, bob: User, branch_a: Branch) -> None:
    record = approved_record(alice, bob, branch_a, 1)
    with pytest.raises(ValueError, match="repeated"):
        update_each(KycRecord, ("registration_note",), [(record.pk, "a"), (record.pk, "b")])


@pytest.mark.django_db
def test_insert_each_fills_the_other_fields_with_their_defaults_in_one_statement(
    alice: User, bob: User, branch_a: Branch
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in (1, 2)]
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        insert_each(
            RecordEvent,
            ("record", "actor", "action", "to_status", "reason"),
            [
                (records[0].pk, bob.pk, "returned", "returned", "why"),
                (records[1].pk, None, "uploaded", "", ""),
            ],
        )
    assert len(queries) == 1
    first, second = (RecordEvent.objects.filter(record=r).latest("pk") for r in records)
    assert (first.actor_id, first.action, first.to_status, first.reason) == (
        bob.pk,
        "returned",
        "returned",
        "why",
    )
    assert (second.actor_id, second.action, second.to_status) == (None, "uploaded", "")
    # from_status and changed_fields take their defaults; created_at (auto_now_add) is now.
    assert (first.from_status, first.changed_fields, second.changed_fields) == ("", [], [])
    assert before <= first.created_at <= second.created_at <= timezone.now()


@pytest.mark.django_db
def test_insert_each_refuses_to_give_every_row_the_same_unique_default() -> None:
    with pytest.raises(ValueError, match="username"):
        insert_each(User, ("password",), [("x",), ("y",)])


@pytest.mark.django_db
def test_insert_each_keeps_any_text_and_a_json_document_as_given(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a, 1)
    awkward = 'it\'s "quoted", back\\slashed, ₹ 1,00,000\nsecond line\t{braces} [and] NULL'
    insert_each(
        RecordEvent,
        ("record", "action", "reason", "changed_fields"),
        [(record.pk, "edited", awkward, ["name", {"pan": [1, None, "x"]}])],
    )
    event = RecordEvent.objects.filter(record=record).latest("pk")
    assert (event.reason, event.changed_fields) == (awkward, ["name", {"pan": [1, None, "x"]}])
