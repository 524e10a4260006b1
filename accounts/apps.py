from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Log-in, sessions and two-factor authentication around Django's auth (users live in institutions)."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .middleware import record_login_time

        user_logged_in.connect(record_login_time, dispatch_uid="accounts.record_login_time")
