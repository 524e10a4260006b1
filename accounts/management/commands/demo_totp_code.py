"""`make totp WHO=checker`: the current code of a make run demo user's demo authenticator."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.demo import DEMO_TOTP_KEY, demo_totp_code
from accounts.selectors import TWO_FACTOR_REQUIRED_ROLES
from institutions.models import User

USAGE = "Say whose code: make totp WHO=admin or make totp WHO=checker."


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo user (make run only; never a real device)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?", default="", help="admin or checker")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("Only for make run's demo (DJANGO_DEBUG=true).")
        username = options["username"].strip()
        if not username:
            raise CommandError(USAGE)
        # Only the device with the published demo key: a real user's own device is never read here.
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True, key=DEMO_TOTP_KEY).first()
        if device is not None:
            self.stdout.write(demo_totp_code(device=device))
            return
        role = User.objects.filter(username=username).values_list("role", flat=True).first()
        if role is None:
            raise CommandError(f"There is no user {username}. {USAGE}")
        if role not in TWO_FACTOR_REQUIRED_ROLES:
            raise CommandError(
                f"{username} needs no code: makers and auditors sign in with their password only "
                "(they may set up an authenticator of their own under Two-factor)."
            )
        raise CommandError(
            f"{username} has no demo authenticator: they set up their own, or were not made by make run. "
            f"An administrator can reset it with Reset two-factor on the user's page."
        )
