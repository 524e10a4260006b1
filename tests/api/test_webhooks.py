"""Webhooks: which status changes become deliveries, what their bodies say, signing, and redelivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from api import webhooks
from api.models import WebhookDelivery
from ckycportal.errors import ActionRefused
from institutions.models import AuditEvent, Branch, User
from records import services as record_services
from records.models import RecordEvent, Status
from tests.api.webhook_helpers import SECRET, make_api_client
from tests.conftest import new_record

URL = "https://cbs.example.bank/hooks/ckyc"


def bodies(client_id: int) -> list[dict[str, Any]]:
    rows = WebhookDelivery.objects.filter(client_id=client_id).order_by("pk")
    return [json.loads(row.body) for row in rows]


def test_status_changes_of_api_clients_records_become_deliveries(branch_a: Branch, alice: User) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    record_services.record_submit(actor=client.user, record=record)
    new_record(alice, branch_a, 2)  # a person's record: no webhook

    assert webhooks.deliveries_derive() == 2

    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [(d.client_id, d.record_id, d.record_status) for d in deliveries] == [
        (client.pk, record.pk, Status.DRAFT),
        (client.pk, record.pk, Status.SUBMITTED),
    ]
    submitted = RecordEvent.objects.get(record=record, action=RecordEvent.Action.SUBMITTED)
    assert deliveries[1].event_id == submitted.pk
    assert deliveries[1].status == WebhookDelivery.Status.PENDING
    assert deliveries[1].next_attempt_at is not None
    assert deliveries[1].body == (
        f'{{"kyc_ref_no":"{record.kyc_ref_no}","status":"submitted",'
        f'"at":"{submitted.created_at.isoformat()}","message":""}}'
    )


def test_clients_without_a_callback_url_or_revoked_get_no_deliveries(branch_a: Branch) -> None:
    silent = make_api_client(branch_a, name="silent")
    revoked = make_api_client(branch_a, name="revoked", webhook_url=URL, revoked=True)
    new_record(silent.user, branch_a, 1)
    new_record(revoked.user, branch_a, 2)

    assert webhooks.deliveries_derive() == 0
    assert not WebhookDelivery.objects.exists()


def test_derivation_run_twice_makes_each_delivery_once(branch_a: Branch) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    new_record(client.user, branch_a, 1)

    assert webhooks.deliveries_derive() == 1
    assert webhooks.deliveries_derive() == 0
    assert WebhookDelivery.objects.count() == 1


def test_an_event_that_commits_behind_the_cursor_is_still_derived(branch_a: Branch) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    webhooks.deliveries_derive()  # the cursor is now
    # Written now, stamped five minutes ago, as a transaction that began then and commits now.
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - timedelta(minutes=5)):
        new_record(client.user, branch_a, 1)

    assert webhooks.deliveries_derive() == 1


def test_events_without_a_status_change_are_not_delivered(branch_a: Branch) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    webhooks.deliveries_derive()
    RecordEvent.objects.create(
        record=record, action=RecordEvent.Action.EDITED, from_status=Status.DRAFT, to_status=Status.DRAFT
    )
    RecordEvent.objects.create(record=record, action=RecordEvent.Action.REVEALED)

    assert webhooks.deliveries_derive() == 0


def test_message_is_the_reason_with_identifiers_masked(branch_a: Branch, bob: User) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    record = record_services.record_submit(actor=client.user, record=record)
    record_services.record_return(
        actor=bob, record=record, reason="PAN ABCPE1234F differs from the card; call 9876543210."
    )

    webhooks.deliveries_derive()

    returned = bodies(client.pk)[-1]
    assert returned["status"] == Status.RETURNED
    assert returned["message"] == "PAN [PAN] differs from the card; call [MOBILE]."


def test_kyc_number_is_sent_only_once_registered(branch_a: Branch) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    record.ckyc_number = "12345678901234"
    record.save(update_fields=["ckyc_number"])
    RecordEvent.objects.create(
        record=record,
        action=RecordEvent.Action.UPLOADED,
        from_status=Status.BATCHED,
        to_status=Status.UPLOADED,
    )
    RecordEvent.objects.create(
        record=record,
        action=RecordEvent.Action.REGISTERED,
        from_status=Status.UPLOADED,
        to_status=Status.REGISTERED,
    )

    webhooks.deliveries_derive()

    draft, uploaded, registered = bodies(client.pk)
    assert "ckyc_number" not in draft
    assert "ckyc_number" not in uploaded
    assert registered["ckyc_number"] == "12345678901234"
    assert registered["status"] == Status.REGISTERED


def test_kwikids_message_is_used_when_the_event_has_no_reason(branch_a: Branch) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    record.upload_message = "Accepted for processing"
    record.save(update_fields=["upload_message"])
    RecordEvent.objects.create(
        record=record,
        action=RecordEvent.Action.UPLOADED,
        from_status=Status.BATCHED,
        to_status=Status.UPLOADED,
    )

    webhooks.deliveries_derive()

    assert bodies(client.pk)[-1]["message"] == "Accepted for processing"


def test_derivation_rings_the_sender_after_commit(
    branch_a: Branch, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from api import tasks

    rung: list[bool] = []
    monkeypatch.setattr(tasks.webhook_deliveries_send, "delay", lambda: rung.append(True))
    client = make_api_client(branch_a, webhook_url=URL)
    new_record(client.user, branch_a, 1)

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.deliveries_derive()
    assert rung == [True]

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.deliveries_derive()
    assert rung == [True]  # nothing new, no ring


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = '{"kyc_ref_no":"REF-1","status":"draft"}'
    headers = webhooks.signed_headers(secret=SECRET, delivery_id=7, body=body, timestamp=1_800_000_000)

    expected = hmac.new(SECRET.encode(), f"1800000000.{body}".encode(), hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": webhooks.USER_AGENT,
        "X-CKYC-Delivery": "7",
        "X-CKYC-Timestamp": "1800000000",
        "X-CKYC-Signature": f"sha256={expected}",
    }


def test_verify_signature_accepts_only_an_untouched_fresh_body_signed_with_the_secret() -> None:
    body = '{"kyc_ref_no":"REF-1","status":"draft"}'
    now = int(time.time())
    headers = webhooks.signed_headers(secret=SECRET, delivery_id=1, body=body, timestamp=now)
    stamp, sig = headers["X-CKYC-Timestamp"], headers["X-CKYC-Signature"]

    assert webhooks.verify_signature(SECRET, stamp, body, sig)
    assert webhooks.verify_signature(SECRET, stamp, body.encode(), signature=sig, tolerance_seconds=300)
    assert not webhooks.verify_signature(SECRET, stamp, body.replace("draft", "registered"), sig)
    assert not webhooks.verify_signature("another-secret", stamp, body, sig)
    assert not webhooks.verify_signature(SECRET, str(now + 1), body, sig)
    assert not webhooks.verify_signature(SECRET, stamp, body, sig.upper())
    assert not webhooks.verify_signature(SECRET, "not-a-number", body, sig)


def test_verify_signature_refuses_a_stale_or_future_timestamp() -> None:
    body = "{}"
    old = int(time.time()) - 301
    headers = webhooks.signed_headers(secret=SECRET, delivery_id=1, body=body, timestamp=old)
    assert not webhooks.verify_signature(SECRET, str(old), body, headers["X-CKYC-Signature"])
    assert webhooks.verify_signature(
        SECRET, str(old), body, headers["X-CKYC-Signature"], tolerance_seconds=600
    )
    future = int(time.time()) + 301
    headers = webhooks.signed_headers(secret=SECRET, delivery_id=1, body=body, timestamp=future)
    assert not webhooks.verify_signature(SECRET, str(future), body, headers["X-CKYC-Signature"])


def test_backoff_grows_and_stops_growing_at_six_hours() -> None:
    waits = [webhooks.backoff_seconds(n) for n in range(1, 9)]
    for wait, base in zip(waits, (30, 120, 600, 3600, 21600, 21600, 21600, 21600), strict=True):
        assert base <= wait <= base * 1.1


def test_only_an_admin_can_redeliver(branch_a: Branch, alice: User) -> None:
    client = make_api_client(branch_a, webhook_url=URL)
    new_record(client.user, branch_a, 1)
    webhooks.deliveries_derive()
    delivery = WebhookDelivery.objects.get()

    with pytest.raises(ActionRefused):
        webhooks.delivery_redeliver(actor=alice, delivery_id=delivery.pk)
    assert not AuditEvent.objects.filter(action="webhook_redelivered").exists()


def test_redeliver_makes_a_failed_delivery_due_now_and_is_audited(
    branch_a: Branch,
    erin: User,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from api import tasks

    rung: list[bool] = []
    monkeypatch.setattr(tasks.webhook_deliveries_send, "delay", lambda: rung.append(True))
    client = make_api_client(branch_a, webhook_url=URL)
    record = new_record(client.user, branch_a, 1)
    webhooks.deliveries_derive()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED, attempts=8, next_attempt_at=None
    )

    with django_capture_on_commit_callbacks(execute=True):
        redelivered = webhooks.delivery_redeliver(actor=erin, delivery_id=delivery.pk)

    assert redelivered.status == WebhookDelivery.Status.PENDING
    assert redelivered.attempts == 0
    assert redelivered.next_attempt_at is not None
    assert redelivered.next_attempt_at <= timezone.now()
    assert rung == [True]
    audit = AuditEvent.objects.get(action="webhook_redelivered")
    assert audit.actor == erin
    assert audit.object_id == str(delivery.pk)
    assert audit.detail == {"client_id": client.pk, "previous": {"status": "failed", "attempts": 8}}
    assert record.kyc_ref_no not in json.dumps(audit.detail)


def test_redeliver_of_an_unknown_delivery_is_refused(erin: User) -> None:
    with pytest.raises(ActionRefused):
        webhooks.delivery_redeliver(actor=erin, delivery_id=999_999)


def test_beat_runs_the_registered_webhook_tasks() -> None:
    from django.conf import settings

    from api import tasks
    from ckycportal.celery import app

    app.loader.import_default_modules()
    derive = settings.CELERY_BEAT_SCHEDULE["derive-webhook-deliveries"]
    send = settings.CELERY_BEAT_SCHEDULE["send-webhook-deliveries"]
    assert derive["task"] == tasks.webhook_deliveries_derive.name
    assert send["task"] == tasks.webhook_deliveries_send.name
    assert derive["schedule"] == float(settings.WEBHOOK_DERIVE_EVERY_SECONDS)
    assert send["schedule"] == float(settings.WEBHOOK_SEND_EVERY_SECONDS)
    assert {derive["task"], send["task"]} <= set(app.tasks)


def test_the_readmes_verification_example_checks_the_portals_signature() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Webhooks to API clients", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(example, namespace)
    verify = namespace["verify"]
    body = '{"kyc_ref_no":"REF-1","status":"registered"}'
    headers = webhooks.signed_headers(secret=SECRET, delivery_id=1, body=body)
    stamp, sig = headers["X-CKYC-Timestamp"], headers["X-CKYC-Signature"]

    assert verify(SECRET, stamp, body.encode(), sig)
    assert not verify(SECRET, stamp, body.replace("registered", "rejected").encode(), sig)
    assert not verify("another-secret", stamp, body.encode(), sig)
    assert not verify(SECRET, str(int(stamp) - 301), body.encode(), sig)
