"""Create or update the institution's CERSAI codes, KwikID connection and branches, for scripted set-up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from institutions.models import Branch, Institution
from uploads.institution import institution_configure


def read_secret(source: str) -> str:
    """The token from a file, or from standard input with '-': never from the command line itself."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return text.strip()


class Command(BaseCommand):
    help = "Create or update the institution (by --fi-code) and its branches; the token from a file or stdin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fi-code", required=True)
        parser.add_argument("--region-code", required=True)
        parser.add_argument("--username", required=True, help="CERSAI username")
        parser.add_argument("--api-version", default="V1.3")
        parser.add_argument(
            "--api-base-url", required=True, help="KwikID base URL, e.g. https://verify.test.getkwikid.com"
        )
        parser.add_argument(
            "--token-file", help="file holding the KwikID bearer token, or - for standard input"
        )
        parser.add_argument("--branch", action="append", default=[], metavar="CODE:NAME")
        parser.add_argument("--max-records", type=int, help="maximum records per request")
        parser.add_argument("--name", help="the institution's display name (default: the FI code)")

    def handle(self, *args: Any, **options: Any) -> None:
        branches = []
        for spec in options["branch"]:
            code, sep, name = spec.partition(":")
            if not sep or not code.strip() or not name.strip():
                raise CommandError(f"--branch must be CODE:NAME, got {spec!r}")
            branches.append((code.strip(), name.strip()))
        try:
            token = read_secret(options["token_file"]) if options["token_file"] else ""
        except OSError as exc:
            raise CommandError(f"Cannot read the token file: {exc.strerror}") from exc
        existing = Institution.objects.filter(fi_code=options["fi_code"]).first()
        data: dict[str, Any] = {
            "fi_code": options["fi_code"],
            "region_code": options["region_code"],
            "cersai_username": options["username"],
            "api_version": options["api_version"],
            "api_base_url": options["api_base_url"],
            "name": options["name"] or (existing.name if existing else options["fi_code"]),
        }
        if options["max_records"] is not None:
            data["max_records_per_request"] = options["max_records"]
        try:
            with transaction.atomic():
                institution = institution_configure(actor=None, institution=existing, data=data, token=token)
                for code, name in branches:
                    branch = Branch.objects.filter(institution=institution, code=code).first()
                    branch = branch or Branch(institution=institution, code=code)
                    branch.name = name
                    branch.full_clean()
                    branch.save()
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            else:
                problems = " ".join(exc.messages)
            raise CommandError(f"Invalid settings: {problems}") from exc
        verb = "Updated" if existing else "Created"
        self.stdout.write(
            f"{verb} institution {institution.fi_code} with {institution.branches.count()} branches; "
            f"token {'replaced' if token else 'unchanged'}."
        )
