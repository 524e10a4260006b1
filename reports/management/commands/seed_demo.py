"""make run's living demo: records in every state for the demo institution, dated over three weeks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from records.models import KycRecord
from reports.demo import DEFAULT_RECORDS, DemoRefused, demo_seed


class Command(BaseCommand):
    help = (
        "Add demo records to make run's demo institution through the services: drafts, reviews, uploads, "
        "KwikID's answers and registrations over the last three weeks. Run again to add more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="how many records to add")
        parser.add_argument("--seed", type=int, default=2026, help="the random seed (same seed, same demo)")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="only into a portal with no records yet (make run's start)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and KycRecord.objects.exists():
            return
        try:
            summary = demo_seed(records=options["records"], seed=options["seed"])
        except DemoRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("\n".join(summary.lines()))
