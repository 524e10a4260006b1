"""Thin Celery tasks over api.webhooks; each is safe to run twice, also at the same time."""

from __future__ import annotations

from celery import shared_task

from . import webhooks


@shared_task(name="api.tasks.webhook_deliveries_derive", ignore_result=True)
def webhook_deliveries_derive() -> None:
    """New status changes of API clients' records -> pending deliveries (the sender is rung after commit)."""
    webhooks.deliveries_derive()


@shared_task(name="api.tasks.webhook_deliveries_send", ignore_result=True)
def webhook_deliveries_send() -> None:
    """POST the deliveries that are due (rung after derivation; the periodic run picks up the retries)."""
    webhooks.deliveries_send()
