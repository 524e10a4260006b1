"""Webhook delivery against a real local HTTP receiver: success, retries with back-off, timeouts,
redirects, giving up, redelivery, and the order of one record's deliveries."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from api import tasks, webhooks
from api.models import ApiClient, WebhookDelivery
from institutions.models import Branch, User
from records import services as record_services
from tests.api.webhook_helpers import SECRET, Answer, Receiver, make_api_client, running_receiver
from tests.conftest import new_record


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0
    settings.WEBHOOK_READ_TIMEOUT = 0.5
    settings.WEBHOOK_MAX_ATTEMPTS = 8


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def client(branch_a: Branch, receiver: Receiver) -> ApiClient:
    return make_api_client(branch_a, webhook_url=receiver.url)


def one_delivery(client: ApiClient, branch: Branch, n: int = 1) -> WebhookDelivery:
    """A record created by the client's user, and the one delivery its creation makes."""
    new_record(client.user, branch, n)
    webhooks.deliveries_derive()
    return WebhookDelivery.objects.filter(client=client).latest("pk")


def make_due() -> None:
    """As if every back-off wait had passed."""
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def statuses(receiver: Receiver) -> list[str]:
    return [json.loads(request.body)["status"] for request in receiver.received]


def test_a_2xx_answer_delivers_a_correctly_signed_post(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    delivery = one_delivery(client, branch_a)

    assert webhooks.deliveries_send() == 1

    [request] = receiver.received
    assert request.path == "/hooks/ckyc"
    assert request.body == delivery.body.encode()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-CKYC-Delivery"] == str(delivery.pk)
    assert webhooks.verify_signature(
        SECRET, request.headers["X-CKYC-Timestamp"], request.body, request.headers["X-CKYC-Signature"]
    )
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (1, 200, "")
    assert delivery.delivered_at is not None
    assert delivery.claimed_until is None


def test_a_5xx_is_retried_with_backoff_then_delivered(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    page = b"<html><body>Internal error for ABCPE1234F" + b" padding" * 100 + b"</body></html>"
    receiver.answer(Answer(500, body=page), Answer(503, body=b"busy"))
    delivery = one_delivery(client, branch_a)

    before = timezone.now()
    assert webhooks.deliveries_send() == 0
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert (delivery.attempts, delivery.last_status_code) == (1, 500)
    assert delivery.last_error.startswith("HTTP 500: <html>")
    assert len(delivery.last_error) <= webhooks.ERROR_EXCERPT
    assert "ABCPE1234F" not in delivery.last_error
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 30 <= wait <= 34

    assert webhooks.deliveries_send() == 0  # not due yet: nothing sent
    assert len(receiver.received) == 1

    make_due()
    before = timezone.now()
    webhooks.deliveries_send()
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (2, 503, "HTTP 503: busy")
    assert delivery.next_attempt_at is not None
    assert 120 <= (delivery.next_attempt_at - before).total_seconds() <= 133

    make_due()
    assert webhooks.deliveries_send() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 200, "")
    assert len(receiver.received) == 3


def test_a_receiver_slower_than_the_read_timeout_is_a_failed_attempt(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    receiver.answer(Answer(200, delay=3))
    delivery = one_delivery(client, branch_a)

    started = time.monotonic()
    assert webhooks.deliveries_send() == 0
    assert time.monotonic() - started < 2.5

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error == "The receiver did not answer in time."


def test_a_receiver_that_is_down_is_a_failed_attempt(branch_a: Branch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_api_client(branch_a, webhook_url=f"http://127.0.0.1:{port}/hooks")
    delivery = one_delivery(client, branch_a)

    webhooks.deliveries_send()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.PENDING, 1)
    assert delivery.last_error == "Could not connect to the receiver."


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    receiver.answer(Answer(307, headers={"Location": receiver.url + "/elsewhere"}))
    delivery = one_delivery(client, branch_a)

    webhooks.deliveries_send()

    assert [request.path for request in receiver.received] == ["/hooks/ckyc"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 307)
    assert "redirects are not followed" in delivery.last_error


def test_plain_http_is_refused_unless_allowed(
    client: ApiClient, branch_a: Branch, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_HTTP = False
    delivery = one_delivery(client, branch_a)

    webhooks.deliveries_send()

    assert receiver.received == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.PENDING, 1)
    assert delivery.last_error == "The callback URL must use HTTPS."


def test_gives_up_after_the_maximum_attempts(
    client: ApiClient, branch_a: Branch, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answer(*[Answer(500)] * 5)
    delivery = one_delivery(client, branch_a)

    for _ in range(5):
        make_due()
        webhooks.deliveries_send()

    assert len(receiver.received) == 3
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert (delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == (3, 500, None)


def test_redeliver_sends_a_delivered_one_again(
    client: ApiClient, branch_a: Branch, receiver: Receiver, erin: User
) -> None:
    delivery = one_delivery(client, branch_a)
    webhooks.deliveries_send()

    webhooks.delivery_redeliver(actor=erin, delivery_id=delivery.pk)
    assert webhooks.deliveries_send() == 1

    assert [r.body for r in receiver.received] == [delivery.body.encode()] * 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.DELIVERED, 1)


def test_a_newer_status_waits_for_an_older_pending_one_of_the_same_record(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    record = new_record(client.user, branch_a, 1)
    record_services.record_submit(actor=client.user, record=record)
    other = new_record(client.user, branch_a, 2)
    webhooks.deliveries_derive()
    receiver.answer(Answer(500))  # the first record's draft fails once

    webhooks.deliveries_send()
    assert [(json.loads(r.body)["kyc_ref_no"], json.loads(r.body)["status"]) for r in receiver.received] == [
        (record.kyc_ref_no, "draft"),
        (other.kyc_ref_no, "draft"),  # another record is not held up
    ]

    make_due()
    webhooks.deliveries_send()
    assert statuses(receiver)[2:] == ["draft", "submitted"]
    assert not WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.DELIVERED).exists()


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(
    client: ApiClient, branch_a: Branch
) -> None:
    delivery = one_delivery(client, branch_a)
    now = timezone.now()

    assert [d.pk for d in webhooks._claim(now)] == [delivery.pk]
    assert webhooks._claim(now) == []
    assert [d.pk for d in webhooks._claim(now + timedelta(minutes=5))] == [delivery.pk]


def test_the_send_task_run_twice_posts_once(client: ApiClient, branch_a: Branch, receiver: Receiver) -> None:
    one_delivery(client, branch_a)

    tasks.webhook_deliveries_send()
    tasks.webhook_deliveries_send()

    assert len(receiver.received) == 1


def test_a_run_out_of_time_hands_its_claims_back(
    client: ApiClient, branch_a: Branch, receiver: Receiver
) -> None:
    one_delivery(client, branch_a)

    assert webhooks.deliveries_send(pass_seconds=0) == 0

    assert receiver.received == []
    assert WebhookDelivery.objects.get().claimed_until is None
