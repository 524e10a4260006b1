"""Purge the personal data of KYC records whose customer relationship closed more than 5 years ago.

Each record and its history stay, as a tombstone ("purged on …, under rule …"): see uploads.retention.
Dry run by default: --apply purges. Audited either way.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from institutions.models import User
from uploads.retention import PurgeRefused, records_purge_expired


class Command(BaseCommand):
    help = (
        "List (default) or purge (--apply) records whose relationship closed more than 5 years ago: their "
        "personal data is erased, the record and its history stay as a tombstone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="purge; without it nothing is changed")
        parser.add_argument("--as", dest="username", required=True, help="the admin carrying out the purge")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.filter(username=options["username"]).first()
        if actor is None:
            raise CommandError(f"{options['username']!r} is not an active admin: only admins purge records.")
        try:
            result = records_purge_expired(actor=actor, apply=options["apply"])
        except PurgeRefused as exc:
            raise CommandError(str(exc)) from exc
        for ref in result.kyc_ref_nos:
            self.stdout.write(f"{'purge' if result.applied else 'would purge'} {ref}")
        verb = "Purged" if result.applied else "Dry run: would purge"
        self.stdout.write(
            f"{verb} {len(result.kyc_ref_nos)} records whose relationship closed before {result.cutoff}."
        )
