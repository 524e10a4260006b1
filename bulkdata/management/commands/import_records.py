"""manage.py import_records FILE --branch CODE --as USERNAME [--dry-run] [--submit] [--valid-only]"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bulkdata.engine import ImportConflict, ImportOutcome, ImportRejected, records_import
from bulkdata.parsers import FileRefused
from institutions.models import AuditEvent, Branch, User
from records.validation import Problem


class Command(BaseCommand):
    help = (
        "Import KYC records from a CSV, XLSX or JSON file. All or nothing: when any row is invalid nothing "
        "is saved, one line per problem is printed (row <n> <field>: <message>) and the exit status is 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV (UTF-8), XLSX or JSON (KwikID's request body or its records)")
        parser.add_argument("--branch", required=True, help="CERSAI code of the branch the records belong to")
        parser.add_argument(
            "--as", dest="username", required=True, help="the maker the records are entered by"
        )
        parser.add_argument("--dry-run", action="store_true", help="check every row, save nothing")
        parser.add_argument("--submit", action="store_true", help="submit the records for review")
        parser.add_argument(
            "--valid-only", action="store_true", help="save the valid rows and skip the invalid ones"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        actor = User.objects.filter(username=options["username"], is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user {options['username']!r}.")
        code = options["branch"].strip().upper()
        branch = actor.branches.filter(code__iexact=code).select_related("institution").first()
        if branch is None:
            if not Branch.objects.filter(code__iexact=code).exists():
                raise CommandError(f"No branch with code {code!r}.")
            raise CommandError(f"{actor.username} does not work at branch {code}.")
        dry_run = options["dry_run"]

        def opener() -> IO[bytes]:
            return path.open("rb")

        def report(row: int, problems: list[Problem]) -> None:
            for p in problems:
                label = "" if p.is_error else "warning: "
                self.stdout.write(f"row {row} {p.field}: {label}{p.message}")

        def audit(outcome: ImportOutcome) -> None:
            AuditEvent.objects.create(
                actor=actor,
                action="import_done",
                object_type="Branch",
                object_id=str(branch.pk),
                detail={
                    "source": "command",
                    "created": outcome.created,
                    "skipped": outcome.invalid,
                    "submitted": options["submit"],
                },
            )

        try:
            outcome = records_import(
                actor=actor,
                branch=branch,
                opener=opener,
                filename=path.name,
                save=not dry_run,
                only_valid=options["valid_only"],
                submit=options["submit"],
                on_problems=report,
                after_save=audit,
            )
        except ImportRejected as exc:
            self.stdout.write(exc.outcome.summary())
            raise SystemExit(1) from None
        except (FileRefused, ImportConflict, PermissionDenied) as exc:
            self.stdout.write(f"file: {exc}")
            self.stdout.write("0 rows imported; nothing saved")
            raise SystemExit(1) from None
        self.stdout.write(outcome.summary(dry_run=dry_run))
        if outcome.invalid and not options["valid_only"]:
            raise SystemExit(1)
