"""make run's demo institution using the KwikID stand-in, its two branches and one user a role (its records:
seed_demo)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from accounts.demo import DEMO_BRANCHES, DEMO_FI_CODE, DEMO_TOTP_USERS, DEMO_USERS, demo_totp_device_ensure
from institutions.models import User


class Command(BaseCommand):
    help = "Create or refresh the demo institution, branches and users (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--api-base-url", default="http://127.0.0.1:8765")
        parser.add_argument("--token-file", required=True, help="file holding the stand-in's token")
        parser.add_argument("--password", required=True, help="password for every demo user")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command(
            "configure_institution",
            fi_code=DEMO_FI_CODE,
            name="Demo Bank",
            region_code="MH",
            username="DEMOUSER",
            api_base_url=options["api_base_url"],
            token_file=options["token_file"],
            branch=[f"{code}:{name}" for code, name in DEMO_BRANCHES],
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
