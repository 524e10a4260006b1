"""Thin periodic tasks over reports.services; each is safe to run twice, also at the same time."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="reports.tasks.notifications_derive", ignore_result=True)
def notifications_derive() -> None:
    """New returns, rejections and registrations before upload -> notifications; then the day's digests."""
    services.notifications_derive()
    services.digests_create()
    services.notification_emails_send()


@shared_task(name="reports.tasks.notification_emails_send", ignore_result=True)
def notification_emails_send() -> None:
    """Send pending notification emails (rung after commit; the periodic task catches any missed ring)."""
    services.notification_emails_send()
