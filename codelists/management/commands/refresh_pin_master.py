"""Reload the PIN master (PIN -> district and state): from the indian-pincode package, or from a CSV file.

Idempotent and all or nothing (one transaction); prints what changed. ``--file`` takes CERSAI's own
Pincode master (or any list) as CSV with the columns pin,district,state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from codelists import services
from codelists.models import State
from codelists.pin_sources import PinSourceError, package_description, rows_from_csv, rows_from_package


class Command(BaseCommand):
    help = "Reload the PIN master from the indian-pincode package, or from a CSV file (pin,district,state)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, help="CSV with the columns pin,district,state (UTF-8)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path | None = options["file"]
        try:
            if path is None:
                source = package_description()
                rows = list(rows_from_package())
            else:
                names = {
                    code: (name or label).upper()
                    for code, name, label in State.objects.values_list("code", "pin_master_name", "label")
                }
                source = f"file {path.name}"
                rows = list(rows_from_csv(path, state_names=names))
        except PinSourceError as exc:
            raise CommandError(exc.message) from exc
        if not rows:
            raise CommandError(f"{source} holds no PIN: the PIN master was left as it was")
        counts = services.pin_master_replace(rows=rows, source=source)
        self.stdout.write(f"PIN master from {source}: {counts.summary()}")
