"""Writes of the reports app: notifications derived from the records' history, and their emails.

Derivation reads RecordEvents (records/services.py is not touched): a checker's return, KwikID's
rejection and the upload worker's sending back a record that fails today's rules each become a notification
to the record's maker(s); a record found registered before its
upload (a possible duplicate, or an update that should have been one) notifies its maker(s) and its
checker. Every job here is safe to run twice, also at the same time: a row lock on the cursor serialises
derivation, unique constraints make each notification once, and emails are claimed row by row before they
are sent (after commit, outside any transaction). A failed email stays pending and is retried with a cap;
the notification itself is never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from ckycportal.logging import redact
from institutions.models import Role, User
from records import selectors as record_selectors
from records.models import DUE_SOON_DAYS, REGISTERED_STATUSES, RecordEvent
from uploads.services import RULES_REFUSAL, SCHEMA_REFUSAL

from .models import DerivationCursor, Notification

logger = logging.getLogger(__name__)

NOTIFIED_ACTIONS = (RecordEvent.Action.RETURNED, RecordEvent.Action.REJECTED, RecordEvent.Action.PREEXISTING)
# Events are re-read this far behind the cursor: a transaction that commits late (its created_at was set
# before a later one committed) is still seen. The unique constraint makes the re-read harmless.
OVERLAP = timedelta(minutes=10)
DERIVE_CHUNK = 1000
EMAIL_CHUNK = 50
EMAIL_CLAIM = timedelta(minutes=5)
EMAIL_MAX_ATTEMPTS = 8


def _email_status(user: User) -> str:
    return Notification.Email.PENDING if user.email else Notification.Email.NONE


def _event_notifications(event: RecordEvent) -> list[Notification]:
    record = event.record
    recipients = {u.pk: u for u in (record.created_by, record.submitted_by) if u is not None}
    if event.action == RecordEvent.Action.RETURNED:
        kind = Notification.Kind.RETURNED
        who = event.actor.username if event.actor else "a checker"
        title = f"Record {record.kyc_ref_no} was returned by {who}"
        todo = "Fix the record and submit it again."
    elif event.action == RecordEvent.Action.PREEXISTING:
        kind = Notification.Kind.PREEXISTING
        title = f"Record {record.kyc_ref_no} was registered at CKYCR before its upload"
        todo = (
            "The registry's KYC date is earlier than the day KwikID accepted the record: it may be a "
            "duplicate upload, or an update that should have been one. Please look at the record."
        )
        if record.reviewed_by is not None:
            recipients.setdefault(record.reviewed_by.pk, record.reviewed_by)
    else:
        kind = Notification.Kind.REJECTED
        if event.reason.startswith((RULES_REFUSAL, SCHEMA_REFUSAL)):
            # The upload worker's own check sent it back: KwikID never saw it.
            title = f"Record {record.kyc_ref_no} was sent back before upload"
        else:
            title = f"Record {record.kyc_ref_no} was rejected by KwikID"
        todo = "Fix the record and submit it again."
    body = redact(event.reason or "No reason was given.")[:2000]
    return [
        Notification(
            recipient=user,
            kind=kind,
            event=event,
            record=record,
            title=title[:200],
            body=f"{body}\n\n{todo}",
            email_status=_email_status(user),
        )
        for user in recipients.values()
        if user.is_active
    ]


def notifications_derive(*, now: datetime | None = None) -> int:
    """Turn new return, rejection and registered-before-upload events into notifications for the records'
    makers (and, for registered before upload, the checker who approved it).

    Safe to run twice, also concurrently. Returns how many notifications were made.
    """
    now = now or timezone.now()
    created = 0
    with transaction.atomic():
        cursor, _ = DerivationCursor.objects.select_for_update().get_or_create(
            key="record_events", defaults={"position": now - timedelta(days=1)}
        )
        already = Notification.objects.filter(event=OuterRef("pk"))
        events = list(
            RecordEvent.objects.filter(action__in=NOTIFIED_ACTIONS, created_at__gte=cursor.position - OVERLAP)
            .filter(~Exists(already))
            .select_related("record__created_by", "record__submitted_by", "record__reviewed_by", "actor")
            .order_by("created_at", "pk")[:DERIVE_CHUNK]
        )
        rows = [n for event in events for n in _event_notifications(event)]
        if rows:
            # The cursor's row lock serialises runs, so conflicts are rare; ignoring them keeps them harmless.
            Notification.objects.bulk_create(rows, ignore_conflicts=True)
            created = len(rows)
        # The cursor never passes an event not yet read (chunks), and never goes backwards.
        newest = events[-1].created_at if len(events) == DERIVE_CHUNK else now
        if newest > cursor.position:
            cursor.position = newest
            cursor.save(update_fields=["position"])
        if rows:
            transaction.on_commit(_ring_email_sender)
    return created


@dataclass(frozen=True)
class DigestCounts:
    waiting: int
    overdue: int
    due_soon: int


def _digest_counts(checker: User, today: datetime) -> DigestCounts:
    waiting = record_selectors.review_queue(checker).count()
    open_records = record_selectors.record_list(checker).exclude(status__in=REGISTERED_STATUSES)
    day = today.date()
    overdue = open_records.filter(upload_due_on__lt=day).count()
    due_soon = open_records.filter(
        upload_due_on__gte=day, upload_due_on__lte=day + timedelta(days=DUE_SOON_DAYS)
    ).count()
    return DigestCounts(waiting, overdue, due_soon)


def digests_create(*, now: datetime | None = None) -> int:
    """Each active checker's daily summary: what waits for them and what is overdue or due soon.

    Made once a day per checker, from settings.NOTIFY_DIGEST_HOUR (local time) on; nothing to say, no
    digest. Safe to run twice (unique per checker and day). Returns how many were created.
    """
    local = timezone.localtime(now or timezone.now())
    if local.hour < settings.NOTIFY_DIGEST_HOUR:
        return 0
    already = Notification.objects.filter(
        recipient=OuterRef("pk"), kind=Notification.Kind.DIGEST, digest_on=local.date()
    )
    checkers = User.objects.filter(role=Role.CHECKER, is_active=True).filter(~Exists(already))
    rows = []
    for checker in checkers:
        counts = _digest_counts(checker, local)
        if not (counts.waiting or counts.overdue or counts.due_soon):
            continue
        parts = [f"{counts.waiting} record(s) wait for your review."]
        if counts.overdue or counts.due_soon:
            parts.append(
                f"{counts.overdue} record(s) of your branches are overdue for upload and "
                f"{counts.due_soon} are due within {DUE_SOON_DAYS} days."
            )
        rows.append(
            Notification(
                recipient=checker,
                kind=Notification.Kind.DIGEST,
                digest_on=local.date(),
                title=f"Your review summary for {local:%d %b %Y}",
                body=" ".join(parts),
                email_status=_email_status(checker),
            )
        )
    with transaction.atomic():
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        if rows:
            transaction.on_commit(_ring_email_sender)
    return len(rows)


def _ring_email_sender() -> None:
    from .tasks import notification_emails_send

    try:
        notification_emails_send.delay()
    except Exception:  # the broker is only a doorbell: the periodic run sends them anyway
        logger.warning("Could not queue the notification emails; the periodic run will send them")


def _claim_emails(now: datetime) -> list[Notification]:
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(email_status=Notification.Email.PENDING)
            .filter(Q(email_claimed_until__isnull=True) | Q(email_claimed_until__lt=now))
            .order_by("created_at")[:EMAIL_CHUNK]
        )
        Notification.objects.filter(pk__in=[n.pk for n in rows]).update(email_claimed_until=now + EMAIL_CLAIM)
    return rows


def _email_text(notification: Notification) -> tuple[str, str]:
    base = settings.PORTAL_BASE_URL.rstrip("/")
    link = base + (
        reverse("records:detail", kwargs={"pk": notification.record_id})
        if notification.record_id
        else reverse("reports:notifications")
    )
    return (
        f"[CKYC Portal] {notification.title}",
        f"{notification.body}\n\n{link}\n\nYour notifications: {base}{reverse('reports:notifications')}\n",
    )


def notification_emails_send(*, now: datetime | None = None) -> int:
    """Send pending notification emails, each claimed first; a failure is retried later, up to a cap.

    The SMTP call happens outside any transaction. Safe to run twice, also concurrently (claims).
    Returns how many were sent.
    """
    sent = 0
    while True:
        now = now or timezone.now()
        batch = _claim_emails(now)
        if not batch:
            return sent
        recipients = {u.pk: u for u in User.objects.filter(pk__in={n.recipient_id for n in batch})}
        for notification in batch:
            user = recipients[notification.recipient_id]
            if not user.email:  # the address was removed since: the portal notification is all there is
                Notification.objects.filter(pk=notification.pk).update(
                    email_status=Notification.Email.NONE, email_claimed_until=None
                )
                continue
            subject, body = _email_text(notification)
            try:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], fail_silently=False)
            except Exception as exc:  # any transport failure: keep it pending, try again later
                attempts = notification.email_attempts + 1
                failed = attempts >= EMAIL_MAX_ATTEMPTS
                Notification.objects.filter(pk=notification.pk).update(
                    email_attempts=attempts,
                    email_error=type(exc).__name__[:200],
                    email_status=Notification.Email.FAILED if failed else Notification.Email.PENDING,
                    # Backoff: the claim doubles as "not before".
                    email_claimed_until=timezone.now() + timedelta(minutes=2**attempts),
                )
                logger.warning("Notification email %s failed (attempt %s)", notification.pk, attempts)
            else:
                Notification.objects.filter(pk=notification.pk).update(
                    email_status=Notification.Email.SENT,
                    email_sent_at=timezone.now(),
                    email_attempts=notification.email_attempts + 1,
                    email_claimed_until=None,
                )
                sent += 1
        now = None


def notification_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications (or, without an id, all of them) read. Returns how many."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
