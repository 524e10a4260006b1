"""PII at rest and on screen: encrypted columns, the keyed PAN hash, key rotation, masking and reveal (the
retention purge: tests/uploads/test_retention.py). The database is read with raw SQL, as an attacker with a
dump would."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection

from ckycportal.crypto import keyed_hash
from institutions.models import AuditEvent, Branch, Institution, Role, User
from records import services
from records.masking import PII_FIELDS, mask_value
from records.models import KycRecord, RecordEvent
from tests.conftest import TOKEN, make_user, new_record, otp_login
from tests.records.factories import valid_record

pytestmark = pytest.mark.django_db

PLAINTEXTS = {
    "pan": "ABCPE1234F",
    "applicant_first_name": "RAVI",
    "applicant_rel_first_name": "SURESH",
    "dob": "1985-04-12",
    "poa_document_number": "K1234567",
    "poa_address_line_1": "12 Marine Drive",
    "poa_pin_code": "400001",
    "current_vtc": "Pune",
    "mobile_number": "9876543210",
}


def raw_rows(table: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return cursor.fetchall()


def test_database_holds_no_plaintext_pii(alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a)
    dump = repr(raw_rows("records_kycrecord"))
    found = [name for name, text in PLAINTEXTS.items() if text in dump]
    assert found == []


def test_database_holds_no_plaintext_token(institution: Institution) -> None:
    assert TOKEN not in repr(raw_rows("institutions_institution"))
    assert Institution.objects.get().api_token == TOKEN


def test_encrypted_values_read_back_exactly(alice: User, branch_a: Branch) -> None:
    record = KycRecord.objects.get(pk=new_record(alice, branch_a).pk)
    assert record.pan == "ABCPE1234F"
    assert record.dob == date(1985, 4, 12)
    assert record.mobile_number == "9876543210"


def test_pan_hash_finds_the_record_by_exact_pan(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    assert list(KycRecord.objects.filter(pan_hash=keyed_hash(" abcpe1234f "))) == [record]
    assert not KycRecord.objects.filter(pan_hash=keyed_hash("ABCPE1234G")).exists()


def test_editing_the_pan_updates_its_hash(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = valid_record()
    data.update(kyc_ref_no=record.kyc_ref_no, pan="ZZZPZ9999Z")
    services.record_update(actor=alice, record=record, data=data)
    assert KycRecord.objects.get(pk=record.pk).pan_hash == keyed_hash("ZZZPZ9999Z")


def test_key_rotation_reencrypts_and_rows_stay_readable(
    alice: User, branch_a: Branch, institution: Institution, settings: Any
) -> None:
    record = new_record(alice, branch_a)
    before = raw_rows("records_kycrecord")
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    # Readable with the new key list before rotation (old key still listed) ...
    assert KycRecord.objects.get(pk=record.pk).pan == "ABCPE1234F"
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert raw_rows("records_kycrecord") != before
    # ... and after, with the old keys dropped altogether.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    rotated = KycRecord.objects.get(pk=record.pk)
    assert (rotated.pan, rotated.applicant_first_name, rotated.dob) == (
        "ABCPE1234F",
        "RAVI",
        date(1985, 4, 12),
    )
    assert Institution.objects.get().api_token == TOKEN
    assert list(KycRecord.objects.filter(pan_hash=keyed_hash("ABCPE1234F"))) == [rotated]
    assert AuditEvent.objects.filter(action="encryption_keys_rotated").exists()


@pytest.mark.parametrize(
    ("field", "value", "masked"),
    [
        ("pan", "ABCPE1234F", "XXXXXX234F"),
        ("mobile_number", "9876543210", "XXXXXX3210"),
        ("poa_document_number", "1234", "XXXX"),
        ("applicant_first_name", "RAVI KUMAR", "R••• K•••"),
        ("poa_pin_code", "400001", "400XXX"),
        ("dob", date(1985, 4, 12), "••••-••-••"),
        ("kyc_ref_no", "REF-1", "REF-1"),
    ],
)
def test_mask_value_hides_all_but_a_recognisable_part(field: str, value: Any, masked: str) -> None:
    assert mask_value(field, value) == masked


def test_every_encrypted_field_is_masked() -> None:
    from ckycportal.fields import EncryptedTextField

    encrypted = {f.name for f in KycRecord._meta.concrete_fields if isinstance(f, EncryptedTextField)}
    assert encrypted == PII_FIELDS


def test_record_list_shows_masked_pan_and_name(client: Any, alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a)
    client.force_login(alice)
    body = client.get("/records/").content.decode()
    assert "XXXXXX234F" in body
    assert "ABCPE1234F" not in body
    assert "RAVI" not in body


def test_detail_is_masked_until_revealed_and_reveal_is_audited(
    client: Any, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    otp_login(client, alice)  # personal data in clear needs the second factor
    assert "9876543210" not in client.get(f"/records/{record.pk}/").content.decode()
    response = client.post(f"/records/{record.pk}/reveal/", follow=True)
    assert "9876543210" in response.content.decode()
    event = RecordEvent.objects.get(record=record, action=RecordEvent.Action.REVEALED)
    assert event.actor == alice


def test_the_reveal_button_says_it_asks_for_the_code_until_the_session_has_passed_it(
    client: Any, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a)
    hint = "It asks for your authenticator code first."
    client.force_login(alice)  # a password only
    assert hint in client.get(f"/records/{record.pk}/").content.decode()
    otp_login(client, alice)
    body = client.get(f"/records/{record.pk}/").content.decode()
    assert "Reveal personal data" in body and hint not in body


def test_auditor_cannot_reveal(client: Any, alice: User, branch_a: Branch, institution: Institution) -> None:
    record = new_record(alice, branch_a)
    auditor = make_user("oscar", Role.AUDITOR)
    client.force_login(auditor)
    response = client.post(f"/records/{record.pk}/reveal/", follow=True)
    assert "ABCPE1234F" not in response.content.decode()
    assert not RecordEvent.objects.filter(action=RecordEvent.Action.REVEALED).exists()
    with pytest.raises(PermissionDenied):
        services.record_reveal(actor=auditor, record=record)


def test_opening_the_edit_form_counts_as_a_reveal(client: Any, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    otp_login(client, alice)  # personal data in clear needs the second factor
    client.get(f"/records/{record.pk}/edit/")
    assert RecordEvent.objects.filter(record=record, action=RecordEvent.Action.REVEALED).count() == 1


def test_edit_history_keeps_pii_values_masked_only(alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = valid_record()
    data.update(
        kyc_ref_no=record.kyc_ref_no,
        mobile_number="9123456780",
        pan="ABCPE1234G",
        applicant_first_name="ANIL",
        dob=date(1986, 5, 13),
        poa_address_line_1="99 Hill Road",
    )
    services.record_update(actor=alice, record=record, data=data)
    event = RecordEvent.objects.get(record=record, action=RecordEvent.Action.EDITED)
    changes = {c["field"]: (c["old"], c["new"]) for c in event.changed_fields}
    assert changes["mobile_number"] == ("XXXXXX3210", "XXXXXX6780")
    assert changes["pan"] == ("XXXXXX234F", "XXXXXX234G")
    assert changes["applicant_first_name"] == ("R•••", "A•••")
    stored = repr(raw_rows("records_recordevent"))
    for plain in ("9123456780", "9876543210", "ABCPE1234", "ANIL", "RAVI", "1986", "1985", "Hill Road"):
        assert plain not in stored, plain


def test_record_page_shows_the_edit_diff_masked(client: Any, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    data = valid_record() | {"kyc_ref_no": record.kyc_ref_no, "mobile_number": "9123456780"}
    data["kyc_verifier_employee_code"] = "EMP-0777"
    services.record_update(actor=alice, record=record, data=data)
    client.force_login(alice)

    page = client.get(f"/records/{record.pk}/").content.decode()

    assert "XXXXXX6780" in page and "9123456780" not in page
    assert "EMP-0042" in page and "EMP-0777" in page


def test_pages_with_pii_are_not_cached(client: Any, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)
    assert "no-store" in client.get(f"/records/{record.pk}/")["Cache-Control"]


def test_token_replacement_is_audited_without_its_value(erin: User, institution: Institution) -> None:
    from uploads.institution import institution_configure

    institution_configure(actor=erin, institution=institution, data={}, token="brand-new-token-5678")
    event = AuditEvent.objects.get(action="institution_configured")
    assert event.actor == erin
    assert event.detail["token_replaced"] is True
    assert "brand-new-token" not in repr(raw_rows("institutions_auditevent"))


def test_rotation_recomputes_pan_hashes_for_a_new_hash_key(
    alice: User, branch_a: Branch, settings: Any
) -> None:
    record = new_record(alice, branch_a)
    settings.PII_HASH_KEY = "a-brand-new-hash-key-for-pans"
    assert not KycRecord.objects.filter(pan_hash=keyed_hash("ABCPE1234F")).exists()
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert list(KycRecord.objects.filter(pan_hash=keyed_hash("ABCPE1234F"))) == [record]


def test_rotation_re_encrypts_the_personal_data_kept_in_edit_events(
    settings: Any, alice: User, branch_a: Branch
) -> None:
    record = new_record(alice, branch_a, applicant_rel_first_name="SURESH")
    data = services.record_data(record) | {"applicant_rel_first_name": "SURESHCHANDRA"}
    services.record_update(actor=alice, record=record, data=data)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]

    call_command("rotate_encryption_keys", stdout=io.StringIO())

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    event = RecordEvent.objects.get(record=record, action=RecordEvent.Action.EDITED)
    assert services.event_clear_values(event) == {"applicant_rel_first_name": ["SURESH", "SURESHCHANDRA"]}
