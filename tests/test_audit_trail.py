"""The audit trail is append-only in the database (ckycportal/triggers.py): plain SQL, as anyone with the
application's database log-in could send it, cannot change or delete a record's history, the audit log, an
upload attempt or a registry search, nor switch the triggers off with django-pgtrigger's session setting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from institutions.models import AuditEvent, Branch, Institution, User
from records import services
from records.models import KycRecord, RecordEvent
from registry.models import Outcome, SearchAttempt
from tests.conftest import new_record
from tests.records.factories import valid_record
from uploads.models import UploadAttempt, UploadBatch

pytestmark = pytest.mark.django_db

REFUSED = "refused on"


def sql(statement: str, *params: object) -> int:
    """Run one statement in plain SQL, in a savepoint so the test's transaction survives a refusal."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


@pytest.fixture
def rows(alice: User, branch_a: Branch, institution: Institution) -> dict[str, tuple[str, int]]:
    """One row of each protected table: table name and id."""
    record = new_record(alice, branch_a)
    event = RecordEvent.objects.filter(record=record).first()
    audit = AuditEvent.objects.create(actor=alice, action="branch_updated", object_type="Branch")
    batch = UploadBatch.objects.create(institution=institution, branch=branch_a, record_count=1)
    attempt = UploadAttempt.objects.create(
        batch=batch, number=1, started_at=timezone.now(), duration_ms=80, status_code=200
    )
    search = SearchAttempt.objects.create(institution=institution, record=record, outcome=Outcome.REGISTERED)
    assert event is not None
    return {
        "event": ("records_recordevent", event.pk),
        "audit": ("institutions_auditevent", audit.pk),
        "attempt": ("uploads_uploadattempt", attempt.pk),
        "search": ("registry_searchattempt", search.pk),
    }


TABLES = ["event", "audit", "attempt", "search"]
# A column each table has, and a value to write into it.
SET = {
    "event": "reason = 'nothing happened'",
    "audit": "action = 'nothing_happened'",
    "attempt": "status_code = 500",
    "search": "outcome = 'not_found'",
}


@pytest.mark.parametrize("which", TABLES)
def test_plain_sql_update_is_refused(rows: dict[str, tuple[str, int]], which: str) -> None:
    table, pk = rows[which]
    with pytest.raises(DatabaseError, match=REFUSED):
        sql(f"UPDATE {table} SET {SET[which]} WHERE id = %s", pk)


@pytest.mark.parametrize("which", TABLES)
def test_plain_sql_delete_is_refused(rows: dict[str, tuple[str, int]], which: str) -> None:
    table, pk = rows[which]
    with pytest.raises(DatabaseError, match=REFUSED):
        sql(f"DELETE FROM {table} WHERE id = %s", pk)
    assert sql(f"SELECT 1 FROM {table} WHERE id = %s", pk) == 1


@pytest.mark.parametrize("which", TABLES)
def test_pgtriggers_session_switch_does_not_turn_the_protection_off(
    rows: dict[str, tuple[str, int]], which: str
) -> None:
    table, pk = rows[which]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
        )
        names = [name for (name,) in cursor.fetchall()]
    assert names
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", ["{" + ",".join(names) + "}"])
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])


MODELS: dict[str, Callable[[int], object]] = {
    "event": lambda pk: RecordEvent.objects.filter(pk=pk),
    "audit": lambda pk: AuditEvent.objects.filter(pk=pk),
    "attempt": lambda pk: UploadAttempt.objects.filter(pk=pk),
    "search": lambda pk: SearchAttempt.objects.filter(pk=pk),
}
ORM_SET = {
    "event": {"reason": "nothing happened"},
    "audit": {"action": "nothing_happened"},
    "attempt": {"status_code": 500},
    "search": {"outcome": Outcome.NOT_FOUND},
}


@pytest.mark.parametrize("which", TABLES)
def test_orm_update_and_delete_are_refused(rows: dict[str, tuple[str, int]], which: str) -> None:
    _, pk = rows[which]
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        MODELS[which](pk).update(**ORM_SET[which])  # type: ignore[attr-defined]
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        MODELS[which](pk).delete()  # type: ignore[attr-defined]
    assert MODELS[which](pk).exists()  # type: ignore[attr-defined]


def test_deleting_a_record_cannot_take_its_history_with_it(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        KycRecord.objects.filter(pk=record.pk).delete()
    assert RecordEvent.objects.filter(record=record).exists()


def test_an_upload_attempt_is_completed_once_then_never_changes(
    institution: Institution, branch_a: Branch
) -> None:
    batch = UploadBatch.objects.create(institution=institution, branch=branch_a, record_count=1)
    attempt = UploadAttempt.objects.create(batch=batch, number=1, started_at=timezone.now())

    # What the worker does after the call: duration and answer, once.
    assert sql(
        "UPDATE uploads_uploadattempt SET duration_ms = 90, status_code = 200 WHERE id = %s", attempt.pk
    )
    with pytest.raises(DatabaseError, match=REFUSED):
        sql("UPDATE uploads_uploadattempt SET status_code = 500 WHERE id = %s", attempt.pk)
    other = UploadAttempt.objects.create(batch=batch, number=2, started_at=timezone.now())
    with pytest.raises(DatabaseError, match=REFUSED):
        sql("UPDATE uploads_uploadattempt SET number = 7 WHERE id = %s", other.pk)


def test_key_rotation_may_re_encrypt_an_edits_clear_values_and_nothing_else(
    alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    services.record_update(
        actor=alice,
        record=record,
        data=valid_record() | {"kyc_ref_no": record.kyc_ref_no, "pan": "ABCPE1234G"},
    )
    edit = RecordEvent.objects.get(record=record, action=RecordEvent.Action.EDITED)
    stored = edit.changed_values

    RecordEvent.objects.filter(pk=edit.pk).update(changed_values=stored)  # re-encrypted: a fresh token
    with pytest.raises(DatabaseError, match=REFUSED):
        sql("UPDATE records_recordevent SET changed_values = '' WHERE id = %s", edit.pk)
    with pytest.raises(DatabaseError, match=REFUSED):
        sql("UPDATE records_recordevent SET changed_values = 'x', reason = 'y' WHERE id = %s", edit.pk)
    with pytest.raises(DatabaseError, match=REFUSED):
        sql(
            "UPDATE records_recordevent SET changed_values = 'x'"
            " WHERE changed_values = '' AND record_id = %s",
            record.pk,
        )


def test_only_a_record_past_retention_can_be_marked_purged(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(relationship_closed_on=date(2024, 1, 1))
    with pytest.raises(DatabaseError, match="5 years"):
        sql(
            "UPDATE records_kycrecord SET purged_at = now(), purge_note = 'gone' WHERE id = %s",
            record.pk,
        )
    with pytest.raises(DatabaseError, match=REFUSED):
        sql("UPDATE records_recordevent SET reason = 'gone' WHERE record_id = %s", record.pk)


def test_a_purge_is_final(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(relationship_closed_on=date(2019, 1, 1))
    assert sql(
        "UPDATE records_kycrecord SET purged_at = now(), purge_note = 'purged' WHERE id = %s", record.pk
    )
    for change in (
        "purged_at = NULL",
        "purge_note = 'nothing to see'",
        "purged_at = now() - interval '1 day'",
    ):
        with pytest.raises(DatabaseError, match="final"):
            sql(f"UPDATE records_kycrecord SET {change} WHERE id = %s", record.pk)
