"""Webhooks: each status change of an API client's record, POSTed to the client's callback URL, signed.

Deliveries are derived from the records' history (RecordEvent) by a periodic task, never in the request
that changed the status, so a slow or absent receiver can never hold up a maker or a checker. Derivation
follows reports.services: a row-locked cursor re-read with an overlap, and a unique constraint per (client,
event) that makes each delivery once. Sending claims due rows with a lease (``select_for_update`` with
``skip_locked``), so two workers never send one delivery at once; the HTTP call happens after commit,
outside any transaction and any row lock. A failed attempt waits in the database (``next_attempt_at``)
with exponential back-off, not in a Celery countdown, so no wait is longer than Redis's visibility timeout.

The body is serialised once, kept encrypted (it may carry the KIN) and sent exactly as signed:
``X-CKYC-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``.

The POST uses the standard library's ``http.client``: ``requests`` belongs to the KwikID client alone (its
pinned retry rules live there), and a webhook needs only one request with a connect and a read timeout,
no redirect followed and no retry below the delivery's own back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from ckycportal.errors import ActionRefused
from ckycportal.logging import redact
from institutions.models import AuditEvent, Role, User
from records.models import REGISTERED_STATUSES, RecordEvent
from reports.models import DerivationCursor

from .models import ApiClient, WebhookDelivery

logger = logging.getLogger(__name__)

CURSOR_KEY = "webhook_deliveries"
# Events are re-read this far behind the cursor: a transaction that commits late is still seen; the
# unique constraint per (client, event) makes the re-read harmless.
OVERLAP = timedelta(minutes=10)
DERIVE_CHUNK = 1000
SEND_CHUNK = 10
MESSAGE_LIMIT = 1000
ERROR_EXCERPT = 200
# Waits after the 1st, 2nd, ... failed attempt; the last one repeats. Jitter (up to a tenth more) keeps
# the retries of many deliveries from arriving at a recovering receiver together.
BACKOFF_SECONDS = (30, 120, 600, 3600, 6 * 3600)
KWIKID_MESSAGE_ACTIONS = (RecordEvent.Action.UPLOADED, RecordEvent.Action.REJECTED)
USER_AGENT = "CKYC-Portal-Webhooks/1"


def delivery_body(event: RecordEvent) -> str:
    """The JSON a client receives for one status change: compact, ASCII, and never re-serialised.

    ``message`` is the event's reason (or KwikID's message) with PAN-, Aadhaar- and mobile-like strings
    masked; ``ckyc_number`` (the KIN) is there only for a registered record that has one.
    """
    record = event.record
    message = event.reason
    if not message and event.action in KWIKID_MESSAGE_ACTIONS:
        message = record.upload_message
    payload: dict[str, Any] = {
        "kyc_ref_no": record.kyc_ref_no,
        "status": event.to_status,
        "at": event.created_at.isoformat(),
        "message": redact(message)[:MESSAGE_LIMIT],
    }
    if event.to_status in REGISTERED_STATUSES and record.ckyc_number:
        payload["ckyc_number"] = record.ckyc_number
    return json.dumps(payload, separators=(",", ":"))


def deliveries_derive(*, now: datetime | None = None) -> int:
    """Turn new status changes of API clients' records into pending deliveries (clients with a callback
    URL, not revoked), and ring the sender after commit when there are any.

    Safe to run twice, also concurrently. Returns how many deliveries were made.
    """
    now = now or timezone.now()
    with transaction.atomic():
        cursor, _ = DerivationCursor.objects.select_for_update().get_or_create(
            key=CURSOR_KEY, defaults={"position": now - timedelta(days=1)}
        )
        already = WebhookDelivery.objects.filter(event=OuterRef("pk"))
        events = list(
            RecordEvent.objects.filter(created_at__gte=cursor.position - OVERLAP)
            .exclude(to_status="")
            .exclude(from_status=F("to_status"))
            .filter(
                record__created_by__api_client__isnull=False,
                record__created_by__api_client__revoked_at__isnull=True,
            )
            .exclude(record__created_by__api_client__webhook_url="")
            .filter(~Exists(already))
            .select_related("record__created_by__api_client")
            .order_by("created_at", "pk")[:DERIVE_CHUNK]
        )
        rows = [
            WebhookDelivery(
                client=event.record.created_by.api_client,
                record=event.record,
                event=event,
                kyc_ref_no=event.record.kyc_ref_no,
                record_status=event.to_status,
                body=delivery_body(event),
                next_attempt_at=now,
            )
            for event in events
        ]
        if rows:
            # The cursor's row lock serialises runs, so conflicts are rare; ignoring them keeps them harmless.
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        # The cursor never passes an event not yet read (chunks), and never goes backwards.
        newest = events[-1].created_at if len(events) == DERIVE_CHUNK else now
        if newest > cursor.position:
            cursor.position = newest
            cursor.save(update_fields=["position"])
        if rows:
            transaction.on_commit(_ring_sender)
    return len(rows)


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256, keyed with ``secret``, of ``f"{timestamp}.{body}"`` (UTF-8)."""
    raw = body if isinstance(body, bytes) else body.encode()
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(
    *, secret: str, delivery_id: int, body: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one POST: content type, the delivery's id, the timestamp and the signature over both."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-CKYC-Delivery": str(delivery_id),
        "X-CKYC-Timestamp": str(stamp),
        "X-CKYC-Signature": sign(secret, stamp, body),
    }


def verify_signature(
    secret: str,
    timestamp: str,
    body: str | bytes,
    signature: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Whether a received POST was signed with ``secret`` within ``tolerance_seconds`` of ``now``.

    What a receiver does (the README shows it): the timestamp bounds replays, the comparison is constant
    time so the signature cannot be guessed byte by byte.
    """
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, stamp, body).encode(), signature.encode())


def backoff_seconds(attempts: int) -> float:
    """The wait after ``attempts`` failed attempts: 30 s, 2 min, 10 min, 1 h, then 6 h, plus jitter."""
    base = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    return base * (1 + random.random() / 10)  # noqa: S311 (jitter, not a secret)


def _http_budget() -> float:
    return float(settings.WEBHOOK_CONNECT_TIMEOUT) + float(settings.WEBHOOK_READ_TIMEOUT)


def _claim(now: datetime) -> list[WebhookDelivery]:
    """Due pending deliveries, leased to this worker; never one whose record has an older one pending."""
    older_pending = WebhookDelivery.objects.filter(
        client=OuterRef("client"),
        kyc_ref_no=OuterRef("kyc_ref_no"),
        status=WebhookDelivery.Status.PENDING,
        pk__lt=OuterRef("pk"),
    )
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(~Exists(older_pending))
            .order_by("next_attempt_at", "pk")[:SEND_CHUNK]
        )
        # Long enough for every claimed row to be sent one after another at the slowest.
        lease = timedelta(seconds=len(rows) * _http_budget() + 30)
        WebhookDelivery.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_until=now + lease)
    return rows


def _refusal(url: str) -> str:
    """Why ``url`` may not be called at all, or "" when it may."""
    if not url:
        return "The client has no callback URL."
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and settings.WEBHOOK_ALLOW_HTTP):
        return ""
    return "The callback URL must use HTTPS."


def _send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """One POST, never redirected or retried: (status code, the answer's first characters). Raises
    TimeoutError when the receiver is too slow and OSError (ConnectionError, ssl.SSLError...) when it
    cannot be reached."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=settings.WEBHOOK_CONNECT_TIMEOUT)
    try:
        connection.connect()
        if connection.sock is not None:  # connected: from here on, the read timeout applies
            connection.sock.settimeout(settings.WEBHOOK_READ_TIMEOUT)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(ERROR_EXCERPT * 4).decode("utf-8", errors="replace")
    finally:
        connection.close()


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST one delivery: (status code or None, "" on success or why it failed). Never raises."""
    client = delivery.client
    url = client.webhook_url
    refusal = _refusal(url)
    if refusal:
        return None, refusal
    if not client.webhook_secret:
        return None, "The client has no signing secret."
    headers = signed_headers(secret=client.webhook_secret, delivery_id=delivery.pk, body=delivery.body)
    try:
        code, text = _send(url, delivery.body.encode(), headers)
    except TimeoutError:
        return None, "The receiver did not answer in time."
    except (ConnectionError, socket.gaierror, ssl.SSLError):
        return None, "Could not connect to the receiver."
    except (OSError, http.client.HTTPException) as exc:
        return None, f"The request failed ({type(exc).__name__})."
    if 200 <= code < 300:
        return code, ""
    if 300 <= code < 400:
        return code, f"HTTP {code}: redirects are not followed; register the final URL."
    # Only a short excerpt of the answer is kept, masked: it may echo anything back.
    excerpt = redact(text[:ERROR_EXCERPT].replace("\n", " ")).strip()
    return code, f"HTTP {code}: {excerpt}"[:ERROR_EXCERPT]


def _record_outcome(delivery: WebhookDelivery, code: int | None, error: str) -> bool:
    """Save one attempt's outcome on the row; returns whether it was delivered."""
    attempts = delivery.attempts + 1
    now = timezone.now()
    pending = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING)
    if not error:
        pending.update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=attempts,
            last_status_code=code,
            last_error="",
            delivered_at=now,
            next_attempt_at=None,
            claimed_until=None,
        )
        return True
    failed = attempts >= settings.WEBHOOK_MAX_ATTEMPTS
    pending.update(
        status=WebhookDelivery.Status.FAILED if failed else WebhookDelivery.Status.PENDING,
        attempts=attempts,
        last_status_code=code,
        last_error=error[:ERROR_EXCERPT],
        next_attempt_at=None if failed else now + timedelta(seconds=backoff_seconds(attempts)),
        claimed_until=None,
    )
    logger.warning(
        "Webhook delivery %s to client %s failed (attempt %s%s)",
        delivery.pk,
        delivery.client_id,
        attempts,
        ", giving up" if failed else "",
    )
    return False


def deliveries_send(*, pass_seconds: float | None = None) -> int:
    """POST every due delivery, each claimed first, oldest first per record; a failure waits with back-off
    and gives up after settings.WEBHOOK_MAX_ATTEMPTS.

    Stops claiming after ``pass_seconds`` (settings.WEBHOOK_PASS_SECONDS) and leaves the rest to the next
    run. Safe to run twice, also concurrently (leases). Returns how many were delivered.
    """
    budget = settings.WEBHOOK_PASS_SECONDS if pass_seconds is None else pass_seconds
    deadline = time.monotonic() + budget
    delivered = 0
    while time.monotonic() < deadline:
        batch = _claim(timezone.now())
        if not batch:
            break
        clients = ApiClient.objects.in_bulk({d.client_id for d in batch})
        for index, delivery in enumerate(batch):
            if time.monotonic() >= deadline:
                # Out of time: hand the rest back at once rather than at the end of their lease.
                WebhookDelivery.objects.filter(pk__in=[d.pk for d in batch[index:]]).update(
                    claimed_until=None
                )
                break
            delivery.client = clients[delivery.client_id]
            code, error = _post(delivery)
            delivered += _record_outcome(delivery, code, error)
    return delivered


def delivery_redeliver(*, actor: User, delivery_id: int) -> WebhookDelivery:
    """Send one delivery again, now, with its attempts counted afresh (admins only); audited."""
    if actor.role != Role.ADMIN:
        raise ActionRefused("Only an administrator can redeliver a webhook.")
    with transaction.atomic():
        try:
            delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        except WebhookDelivery.DoesNotExist:
            raise ActionRefused("That webhook delivery does not exist.") from None
        previous = {"status": delivery.status, "attempts": delivery.attempts}
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_until=None,
            delivered_at=None,
        )
        AuditEvent.objects.create(
            actor=actor,
            action="webhook_redelivered",
            object_type="webhook_delivery",
            object_id=str(delivery.pk),
            detail={"client_id": delivery.client_id, "previous": previous},
        )
        transaction.on_commit(_ring_sender)
    delivery.refresh_from_db()
    return delivery


def _ring_sender() -> None:
    from .tasks import webhook_deliveries_send

    try:
        webhook_deliveries_send.delay()
    except Exception:  # the broker is only a doorbell: the periodic run sends them anyway
        logger.warning("Could not queue the webhook sender; the periodic run will send the deliveries")
