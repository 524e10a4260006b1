"""Demo data for make run: an institution using the KwikID stand-in, two branches, one user a role."""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from accounts.demo import demo_totp_device_ensure
from institutions.models import User

DEMO_USERS: tuple[tuple[str, str, list[str]], ...] = (
    ("admin", "admin", []),
    ("maker", "maker", ["MUM001", "DEL001"]),
    ("checker", "checker", ["MUM001", "DEL001"]),
    ("auditor", "auditor", []),
)
# The demo users whose role requires two-factor authentication (accounts.selectors.TWO_FACTOR_REQUIRED_ROLES).
DEMO_TOTP_USERS = ("admin", "checker")


class Command(BaseCommand):
    help = "Create or refresh the demo institution, branches and users (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--api-base-url", default="http://127.0.0.1:8765")
        parser.add_argument("--token-file", required=True, help="file holding the stand-in's token")
        parser.add_argument("--password", required=True, help="password for every demo user")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command(
            "configure_institution",
            fi_code="DEMO01",
            name="Demo Bank",
            region_code="MH",
            username="DEMOUSER",
            api_base_url=options["api_base_url"],
            token_file=options["token_file"],
            branch=["MUM001:Mumbai Fort", "DEL001:New Delhi Connaught Place"],
            max_records=100,
            stdout=self.stdout,
        )
        os.environ["PORTAL_USER_PASSWORD"] = options["password"]
        try:
            for username, role, branches in DEMO_USERS:
                call_command("create_portal_user", username, role=role, branch=branches, stdout=self.stdout)
        finally:
            os.environ.pop("PORTAL_USER_PASSWORD", None)
        # Admins and checkers must pass two-factor authentication: give them the published demo key.
        for user in User.objects.filter(username__in=DEMO_TOTP_USERS):
            demo_totp_device_ensure(user=user)
