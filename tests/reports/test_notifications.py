"""Notifications: derived from returns and KwikID rejections, once each however often (or however
concurrently) the job runs; emails after commit, retried on failure, never lost; the bell and its page."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, User
from records import moves as record_moves
from records import services as record_services
from reports import services, tasks
from reports.models import Notification
from tests.conftest import new_record, otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def returned(alice: User, bob: User, branch_a: Branch) -> Any:
    alice.email = "alice@example.com"
    alice.save()
    record = record_services.record_submit(actor=alice, record=new_record(alice, branch_a))
    return record_services.record_return(actor=bob, record=record, reason="PAN ABCPE1234F looks wrong")


def test_return_notifies_the_maker_once_however_often_the_job_runs(returned: Any, alice: User) -> None:
    assert services.notifications_derive() == 1
    assert services.notifications_derive() == 0
    tasks.notifications_derive()  # the periodic task too (it may also make today's checker digest)
    (note,) = Notification.objects.exclude(kind=Notification.Kind.DIGEST)
    assert note.recipient == alice and note.kind == Notification.Kind.RETURNED
    assert returned.kyc_ref_no in note.title and "bob" in note.title
    assert "ABCPE1234F" not in note.body  # a PAN typed into a reason is masked
    assert "[PAN]" in note.body


def test_kwikid_rejection_notifies_the_maker(alice: User, bob: User, branch_a: Branch) -> None:
    from tests.conftest import approved_record

    record = approved_record(alice, bob, branch_a)
    record_moves.records_mark_batched(record_ids=[record.pk])
    record_moves.records_mark_rejected(reasons={record.pk: "records[0].pan: invalid"})
    services.notifications_derive()
    (note,) = Notification.objects.filter(recipient=alice)
    assert note.kind == Notification.Kind.REJECTED and note.record_id == record.pk
    assert "records[0].pan: invalid" in note.body


def test_other_events_notify_nobody(alice: User, branch_a: Branch) -> None:
    record_services.record_submit(actor=alice, record=new_record(alice, branch_a))
    assert services.notifications_derive() == 0
    assert not Notification.objects.exists()


def test_email_is_sent_once_and_marked(returned: Any, alice: User, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    services.notifications_derive()
    assert services.notification_emails_send() == 1
    assert services.notification_emails_send() == 0
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert returned.kyc_ref_no in message.subject
    assert f"/records/{returned.pk}/" in message.body
    assert Notification.objects.get().email_status == Notification.Email.SENT


def test_failed_email_stays_pending_and_is_retried_later(
    returned: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    services.notifications_derive()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("SMTP server down")

    monkeypatch.setattr(services, "send_mail", broken)
    assert services.notification_emails_send() == 0
    note = Notification.objects.get()
    assert note.email_status == Notification.Email.PENDING and note.email_attempts == 1
    assert note.email_error == "OSError"
    monkeypatch.undo()
    # Not before its backoff ends; after it, it is sent.
    assert services.notification_emails_send() == 0
    assert services.notification_emails_send(now=timezone.now() + timedelta(minutes=3)) == 1
    assert len(mail.outbox) == 1


def test_email_gives_up_after_the_cap_but_the_notification_stays(
    returned: Any, settings: Any, monkeypatch: Any
) -> None:
    services.notifications_derive()
    monkeypatch.setattr(services, "send_mail", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    Notification.objects.update(email_attempts=services.EMAIL_MAX_ATTEMPTS - 1)
    services.notification_emails_send()
    note = Notification.objects.get()
    assert note.email_status == Notification.Email.FAILED
    assert note.read_at is None  # still in the portal


def test_user_without_email_gets_the_portal_notification_only(
    alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    record = record_services.record_submit(actor=alice, record=new_record(alice, branch_a))
    record_services.record_return(actor=bob, record=record, reason="Address missing")
    services.notifications_derive()
    services.notification_emails_send()
    assert Notification.objects.get().email_status == Notification.Email.NONE
    assert mail.outbox == []


def test_checker_digest_once_a_day(alice: User, bob: User, branch_a: Branch, settings: Any) -> None:
    settings.NOTIFY_DIGEST_HOUR = 8
    record_services.record_submit(actor=alice, record=new_record(alice, branch_a))
    morning = timezone.localtime().replace(hour=9, minute=0)
    early = morning.replace(hour=6)
    assert services.digests_create(now=early) == 0
    assert services.digests_create(now=morning) == 1
    assert services.digests_create(now=morning + timedelta(hours=2)) == 0
    (digest,) = Notification.objects.filter(recipient=bob, kind=Notification.Kind.DIGEST)
    assert "1 record(s) wait for your review" in digest.body
    assert not Notification.objects.filter(recipient=alice).exists()


def test_digest_counts_due_soon(alice: User, bob: User, branch_a: Branch) -> None:
    from records.models import KycRecord

    record = new_record(alice, branch_a)
    KycRecord.objects.filter(pk=record.pk).update(upload_due_on=timezone.localdate() - timedelta(days=1))
    services.digests_create(now=timezone.localtime().replace(hour=10))
    digest = Notification.objects.get(recipient=bob)
    assert "1 record(s) of your branches are overdue" in digest.body


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_derivations_make_each_notification_once(
    alice: User, bob: User, branch_a: Branch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    for n in range(5):
        record = record_services.record_submit(actor=alice, record=new_record(alice, branch_a, n))
        record_services.record_return(actor=bob, record=record, reason="Fix it")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            services.notifications_derive()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Notification.objects.count() == 5
    assert Notification.objects.filter(recipient=alice).values("event").distinct().count() == 5


def test_bell_counts_unread_and_mark_read(returned: Any, alice: User) -> None:
    services.notifications_derive()
    client = Client()
    otp_login(client, alice)
    page = client.get(reverse("reports:dashboard")).content.decode()
    assert '1<span class="visually-hidden"> unread</span>' in page
    note = Notification.objects.get()
    response = client.get(reverse("reports:notifications"))
    assert note.title in response.content.decode()
    client.post(reverse("reports:notification_read", kwargs={"pk": note.pk}))
    note.refresh_from_db()
    assert note.read_at is not None
    page = client.get(reverse("reports:dashboard")).content.decode()
    assert "unread</span>" not in page


def test_nobody_marks_another_users_notification(returned: Any, bob: User) -> None:
    services.notifications_derive()
    note = Notification.objects.get()
    client = Client()
    otp_login(client, bob)
    client.post(reverse("reports:notification_read", kwargs={"pk": note.pk}))
    client.post(reverse("reports:notifications_read_all"))
    note.refresh_from_db()
    assert note.read_at is None
    assert note.title not in client.get(reverse("reports:notifications")).content.decode()


def test_address_removed_before_sending_leaves_the_portal_notification(
    returned: Any, alice: User, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    services.notifications_derive()
    User.objects.filter(pk=alice.pk).update(email="")
    assert services.notification_emails_send() == 0
    assert mail.outbox == []
    assert Notification.objects.get(recipient=alice).email_status == Notification.Email.NONE


def test_beat_schedule_runs_the_registered_derivation_task() -> None:
    from django.conf import settings

    from ckycportal.celery import app

    task = settings.CELERY_BEAT_SCHEDULE["derive-notifications"]["task"]
    assert task == tasks.notifications_derive.name
    assert task in app.tasks
    assert tasks.notification_emails_send.name in app.tasks
