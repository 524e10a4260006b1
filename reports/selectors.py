"""Reads of a user's notifications: the bell's unread count and the notifications page.

The audit log's reads are reports.audit; the dashboard's, reports.dashboard.
"""

from __future__ import annotations

from django.db.models import QuerySet

from institutions.models import User

from .models import Notification


def notification_list(user: User) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-pk")


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
