"""The institution's send_guide_extra_fields switch, read at send time: records approved (and frozen)
before it was turned on are sent with the guide's members, through the service and a real worker."""

from __future__ import annotations

import subprocess

import pytest
from django.test import Client
from django.urls import reverse

from institutions.models import AuditEvent, Branch, Institution, User
from kwikid_standin.server import StandIn
from records.models import KycRecord, Status
from tests.conftest import approved_record, otp_login, wait_for
from tests.uploads.test_institution import settings_form
from uploads import services
from uploads.models import BatchStatus, UploadBatch


def _turn_on(institution: Institution) -> None:
    Institution.objects.filter(pk=institution.pk).update(send_guide_extra_fields=True)


@pytest.mark.django_db
def test_the_switch_is_off_by_default(institution: Institution) -> None:
    assert Institution._meta.get_field("send_guide_extra_fields").default is False
    assert Institution.objects.get(pk=institution.pk).send_guide_extra_fields is False


@pytest.mark.django_db
def test_an_admin_turns_the_switch_on_on_the_settings_page_and_it_is_audited(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)
    page = client.get(reverse("uploads:institution_settings")).content.decode()
    assert "number_of_identity and additional_documents" in page
    client.post(
        reverse("uploads:institution_settings"), settings_form(institution, send_guide_extra_fields="on")
    )
    assert Institution.objects.get(pk=institution.pk).send_guide_extra_fields is True
    event = AuditEvent.objects.get(action="institution_configured")
    assert event.detail["changes"] == {"send_guide_extra_fields": [False, True]}


@pytest.mark.django_db
def test_switch_off_sends_records_without_the_guides_members(
    alice: User, bob: User, branch_a: Branch, kwikid: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "_enqueue_send", lambda batch_id, countdown: None)
    approved_record(alice, bob, branch_a, 1)
    for batch_id in services.batch_assemble():
        assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    (sent,) = kwikid.stats()["last_request"]["body"]["records"]
    assert "number_of_identity" not in sent and "additional_documents" not in sent


@pytest.mark.django_db
def test_a_record_approved_before_the_switch_was_turned_on_is_sent_with_the_members(
    alice: User,
    bob: User,
    branch_a: Branch,
    institution: Institution,
    kwikid: StandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "_enqueue_send", lambda batch_id, countdown: None)
    frozen = approved_record(alice, bob, branch_a, 1)
    unfrozen = approved_record(alice, bob, branch_a, 2)
    KycRecord.objects.filter(pk=unfrozen.pk).update(frozen_payload="")  # approved before payloads froze
    assert KycRecord.objects.get(pk=frozen.pk).frozen_payload
    _turn_on(institution)
    for batch_id in services.batch_assemble():
        assert services.batch_send(batch_id=batch_id).status == BatchStatus.ACCEPTED
    records = kwikid.stats()["last_request"]["body"]["records"]
    assert len(records) == 2
    for sent in records:
        assert sent["number_of_identity"] == 1
        assert sent["additional_documents"] == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_batch_sent_by_the_worker_with_the_switch_on_carries_the_members(
    celery_worker_process: subprocess.Popen[bytes],
    kwikid: StandIn,
    alice: User,
    bob: User,
    branch_a: Branch,
    institution: Institution,
) -> None:
    records = [approved_record(alice, bob, branch_a, n) for n in range(1, 3)]
    _turn_on(institution)
    services.request_assembly()
    wait_for(
        lambda: (
            set(KycRecord.objects.filter(pk__in=[r.pk for r in records]).values_list("status", flat=True))
            == {Status.UPLOADED}
        ),
        timeout=60,
    )
    assert set(UploadBatch.objects.values_list("status", flat=True)) == {BatchStatus.ACCEPTED}
    body = kwikid.stats()["last_request"]["body"]
    assert [(r["number_of_identity"], r["additional_documents"]) for r in body["records"]] == [(1, [])] * 2
