"""Run one registry checking pass now and say what it found (counts and references, never customer data)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.models import Outcome
from registry.services import registrations_check


class Command(BaseCommand):
    help = (
        "Search the registry now for accepted records that are due (or only those named by --ref, due or "
        "not), within each institution's daily cap, and print what was found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ref", action="append", default=None, metavar="KYC_REF_NO", help="only this record (repeatable)"
        )
        parser.add_argument("--limit", type=int, default=None, help="at most this many searches")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        summary = registrations_check(limit=limit, refs=options["ref"])
        self.stdout.write(f"Searched {summary.searched} record(s).")
        for outcome in Outcome:
            count = summary.outcomes.get(outcome.value, 0)
            if count:
                self.stdout.write(f"  {outcome.label}: {count}")
        if summary.found:
            self.stdout.write("Registered: " + ", ".join(summary.found))
        for name, reason in sorted(summary.skipped.items()):
            self.stdout.write(f"Skipped {name}: {_REASONS.get(reason, reason)}")


_REASONS = {
    "paused": "paused, KwikID refused its token (replace the token to resume)",
    "no token": "no KwikID bearer token is configured",
    "cap": "the day's searches are used up",
    "rate limited": "KwikID asked to slow down (HTTP 429)",
    "misconfigured": "its KwikID address is not usable",
}
