"""The deadline clock (upload_due_on) and the applicant-name search tokens the services keep per record."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from ckycportal.crypto import keyed_hash
from institutions.models import Branch, Institution, User
from records import services
from records.models import KycRecord, RecordNameToken, Status
from tests.conftest import new_record

from .factories import valid_record

pytestmark = pytest.mark.django_db

VERIFIED = valid_record()["kyc_verification_date"]  # 2026-11-03
KIN = "10012345678901"


def edit(maker: User, record: KycRecord, **changes: object) -> KycRecord:
    return services.record_update(
        actor=maker, record=record, data=valid_record() | {"kyc_ref_no": record.kyc_ref_no} | changes
    )


def test_new_customer_is_due_the_institution_upload_days_after_verification(
    alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)

    assert record.upload_due_on == VERIFIED + timedelta(days=10)


def test_update_of_an_existing_ckyc_record_is_due_sooner(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, existing_ckyc_no=KIN)

    assert record.upload_due_on == VERIFIED + timedelta(days=7)


def test_due_date_follows_the_institution_settings(
    alice: User, branch_a: Branch, institution: Institution
) -> None:
    Institution.objects.filter(pk=institution.pk).update(upload_due_days=3, update_due_days=2)
    branch_a.refresh_from_db()

    assert new_record(alice, branch_a, 1).upload_due_on == VERIFIED + timedelta(days=3)
    assert new_record(alice, branch_a, 2, existing_ckyc_no=KIN).upload_due_on == VERIFIED + timedelta(days=2)


def test_no_verification_date_means_no_deadline_yet(alice: User, branch_a: Branch) -> None:
    assert new_record(alice, branch_a, kyc_verification_date=None).upload_due_on is None


def test_editing_the_verification_date_or_the_kin_recomputes_the_deadline(
    alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)

    record = edit(alice, record, kyc_verification_date=date(2026, 11, 1))
    assert record.upload_due_on == date(2026, 11, 11)
    record = edit(alice, record, kyc_verification_date=date(2026, 11, 1), existing_ckyc_no=KIN)
    assert record.upload_due_on == date(2026, 11, 8)
    assert KycRecord.objects.get(pk=record.pk).upload_due_on == date(2026, 11, 8)


@pytest.mark.parametrize("kin", ["1234", "1001234567890A", "100123456789012"])
def test_malformed_kin_is_refused_naming_the_field_and_nothing_is_saved(
    alice: User, branch_a: Branch, kin: str
) -> None:
    with pytest.raises(services.RecordInvalid) as refused:
        new_record(alice, branch_a, existing_ckyc_no=kin)

    assert [p.field for p in refused.value.problems] == ["existing_ckyc_no"]
    assert not KycRecord.objects.exists()


def test_kin_is_encrypted_at_rest(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, existing_ckyc_no=KIN)
    with connection.cursor() as cursor:
        cursor.execute("SELECT existing_ckyc_no FROM records_kycrecord WHERE id = %s", [record.pk])
        (stored,) = cursor.fetchone()

    assert KIN not in stored
    assert KycRecord.objects.get(pk=record.pk).existing_ckyc_no == KIN


@pytest.mark.parametrize(
    ("days_left", "status", "state"),
    [
        (-1, Status.SUBMITTED, "overdue"),
        (0, Status.DRAFT, "due_soon"),
        (2, Status.APPROVED, "due_soon"),
        (3, Status.SUBMITTED, ""),
        # Accepted by KwikID is not registered: the clock runs until the registry holds the record.
        (-5, Status.UPLOADED, "overdue"),
        (-5, Status.REGISTERED, ""),
        (-5, Status.PREEXISTING, ""),
    ],
)
def test_due_state_says_overdue_or_due_soon_until_registered(days_left: int, status: str, state: str) -> None:
    record = KycRecord(status=status, upload_due_on=timezone.localdate() + timedelta(days=days_left))

    assert record.due_state == state


def token_of(word: str) -> str:
    return keyed_hash(f"name:{word}")


def test_name_tokens_hold_keyed_hashes_of_each_whole_word(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a, applicant_first_name="Ravi", applicant_middle_name="de Souza")

    tokens = set(RecordNameToken.objects.filter(record=record).values_list("token_hash", flat=True))

    assert tokens == {token_of("RAVI"), token_of("DE"), token_of("SOUZA")}


def test_name_tokens_ignore_case_and_punctuation() -> None:
    assert services.name_tokens("d'souza") == services.name_tokens("DSOUZA") == {token_of("DSOUZA")}


def test_renaming_replaces_the_name_tokens(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)

    edit(alice, record, applicant_first_name="ANIL", applicant_middle_name="")

    tokens = set(RecordNameToken.objects.filter(record=record).values_list("token_hash", flat=True))
    assert tokens == {token_of("ANIL")}


def test_migration_backfills_due_dates_and_name_tokens(alice: User, branch_a: Branch) -> None:
    backfill = __import__(
        "records.migrations.0005_backfill_due_dates_and_name_tokens", fromlist=["backfill"]
    ).backfill
    record = new_record(alice, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(upload_due_on=None)
    RecordNameToken.objects.all().delete()

    backfill(apps, None)

    assert KycRecord.objects.get(pk=record.pk).upload_due_on == VERIFIED + timedelta(days=10)
    tokens = set(RecordNameToken.objects.filter(record=record).values_list("token_hash", flat=True))
    assert tokens == services.name_tokens("RAVI KUMAR")


def test_changed_institution_days_re_date_open_records_only(
    alice: User, bob: User, branch_a: Branch, institution: Institution
) -> None:
    new_customer = new_record(alice, branch_a, 1)
    update = new_record(alice, branch_a, 2, existing_ckyc_no=KIN)
    waiting = new_record(alice, branch_a, 4)
    KycRecord.objects.filter(pk=waiting.pk).update(status=Status.UPLOADED)
    done = new_record(alice, branch_a, 3)
    KycRecord.objects.filter(pk=done.pk).update(status=Status.REGISTERED)
    before = KycRecord.objects.get(pk=new_customer.pk).updated_at
    Institution.objects.filter(pk=institution.pk).update(upload_due_days=5, update_due_days=3)
    institution.refresh_from_db()

    assert services.records_recompute_due_dates(institution=institution) == 3

    due = dict(KycRecord.objects.values_list("pk", "upload_due_on"))
    assert due[new_customer.pk] == VERIFIED + timedelta(days=5)
    assert due[update.pk] == VERIFIED + timedelta(days=3)
    assert due[waiting.pk] == VERIFIED + timedelta(days=5)  # accepted, not registered: the clock runs
    assert due[done.pk] == VERIFIED + timedelta(days=10)
    assert KycRecord.objects.get(pk=new_customer.pk).updated_at == before  # the list's order is kept
