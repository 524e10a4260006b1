"""Personal data in clear needs a verified second factor, whatever the role: the
reveal, the record's edit form and the export with personal data. A maker without a device is sent to
set one up and comes back; the export with personal data is a POST, audited with the device that passed."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from bulkdata.services import records_export_audit
from institutions.models import AuditEvent, Branch, User
from records.models import KycRecord, RecordEvent
from tests.conftest import new_record, otp_login, totp_code

ENROL = "/accounts/two-factor/enrol/"


@pytest.fixture
def record(alice: User, branch_a: Branch) -> KycRecord:
    return new_record(alice, branch_a, 1)


def reveals(record: KycRecord) -> int:
    return RecordEvent.objects.filter(record=record, action=RecordEvent.Action.REVEALED).count()


def test_maker_without_a_device_is_sent_to_enrolment_instead_of_a_reveal(
    client: Client, alice: User, record: KycRecord
) -> None:
    client.force_login(alice)

    response = client.post(f"/records/{record.pk}/reveal/")

    back = quote(f"/records/{record.pk}/", safe="")
    assert (response.status_code, response.url) == (302, f"{ENROL}?next={back}")
    assert reveals(record) == 0
    assert "ABCPE1234F" not in client.get(f"/records/{record.pk}/").content.decode()


def test_maker_without_a_device_does_not_open_the_edit_form(
    client: Client, alice: User, record: KycRecord
) -> None:
    client.force_login(alice)

    response = client.get(f"/records/{record.pk}/edit/")

    back = quote(f"/records/{record.pk}/edit/", safe="")
    assert (response.status_code, response.url) == (302, f"{ENROL}?next={back}")
    assert reveals(record) == 0


def test_maker_who_sets_up_a_device_goes_back_to_the_edit_form(
    client: Client, alice: User, record: KycRecord
) -> None:
    client.force_login(alice)
    enrol_url = client.get(f"/records/{record.pk}/edit/").url
    client.get(enrol_url)
    pending = TOTPDevice.objects.get(user=alice, confirmed=False)

    response = client.post(enrol_url, {"code": totp_code(pending), "next": f"/records/{record.pk}/edit/"})

    assert (response.status_code, response.url) == (302, f"/records/{record.pk}/edit/")
    page = client.get(response.url)
    assert page.status_code == 200 and "ABCPE1234F" in page.content.decode()
    assert reveals(record) == 1


def test_edit_form_cannot_be_saved_without_the_second_factor(
    client: Client, alice: User, record: KycRecord
) -> None:
    client.force_login(alice)

    response = client.post(f"/records/{record.pk}/edit/", {"action": "save"})

    assert response.status_code == 302 and response.url.startswith(ENROL)
    assert KycRecord.objects.get(pk=record.pk).updated_at == record.updated_at


def test_unmasked_export_without_the_second_factor_sends_to_enrolment_and_exports_nothing(
    client: Client, alice: User, record: KycRecord
) -> None:
    client.force_login(alice)

    response = client.post("/data/exports/records-unmasked.csv?status=draft")

    back = quote("/records/?status=draft", safe="")
    assert (response.status_code, response.url) == (302, f"{ENROL}?next={back}")
    assert not AuditEvent.objects.filter(action="records_exported_unmasked").exists()


def test_a_link_with_unmasked_exports_nothing_in_clear(
    client: Client, alice: User, record: KycRecord
) -> None:
    otp_login(client, alice)  # even with the second factor passed: a link cannot do it

    response = client.get("/data/exports/records.csv?status=draft&unmasked=1")

    assert (response.status_code, response.url) == (302, "/records/?status=draft")
    assert not AuditEvent.objects.filter(action="records_exported_unmasked").exists()


def test_unmasked_export_needs_csrf(alice: User, record: KycRecord) -> None:
    client = Client(enforce_csrf_checks=True)
    otp_login(client, alice)

    response = client.post("/data/exports/records-unmasked.csv")

    assert response.status_code == 403


def test_verified_maker_exports_in_clear_and_the_audit_names_the_device(
    client: Client, alice: User, record: KycRecord
) -> None:
    device = otp_login(client, alice)

    response = client.post("/data/exports/records-unmasked.csv")

    assert "ABCPE1234F" in b"".join(response.streaming_content).decode()
    event = AuditEvent.objects.get(action="records_exported_unmasked")
    assert event.detail["second_factor"] == device.persistent_id
    assert device.key not in str(event.detail)


def test_export_audit_refuses_personal_data_without_a_second_factor(alice: User) -> None:
    with pytest.raises(PermissionDenied):
        records_export_audit(actor=alice, unmasked=True, file_format="csv", filters={}, count=1)

    assert not AuditEvent.objects.filter(action__startswith="records_exported").exists()


def test_records_list_offers_the_export_with_personal_data_as_a_form(client: Client, alice: User) -> None:
    client.force_login(alice)

    html = client.get("/records/?status=draft").content.decode()

    assert 'method="post" action="/data/exports/records-unmasked.csv?status=draft"' in html
    assert "unmasked=1" not in html and "asks for your two-factor code first" in html
