"""`make totp WHO=checker`: the current code of a make run demo user's demo authenticator."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.demo import DEMO_TOTP_KEY, demo_totp_code


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo user (make run only; never a real device)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Only for make run's demo (DJANGO_DEBUG=true).")
        # Only the device with the published demo key: a real user's own device is never read here.
        device = TOTPDevice.objects.filter(
            user__username=options["username"], confirmed=True, key=DEMO_TOTP_KEY
        ).first()
        if device is None:
            raise CommandError(f"{options['username']} has no demo authenticator (only make run's users do).")
        self.stdout.write(demo_totp_code(device=device))
