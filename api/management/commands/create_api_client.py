"""Create an API client for a bank's own system and print its token, once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.clients import api_client_create, expiry_end_of
from ckycportal.errors import PortalError

# The service's field names in the command's words, so an error names the option to fix.
OPTION_NAMES = {
    "name": "NAME",
    "branch_codes": "--branch",
    "expires_at": "--expires",
    "webhook_url": "--webhook-url",
}


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--expires: {value!r} is not a date; write it as YYYY-MM-DD.") from exc


class Command(BaseCommand):
    help = (
        "Create an API client scoped to its branches, acting as the maker api-NAME. Prints its token once: "
        "store it in the calling system straight away."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Letters, digits and hyphens, e.g. core-banking.")
        parser.add_argument(
            "--branch", action="append", default=[], metavar="CODE", help="A branch code (repeat for more)."
        )
        parser.add_argument(
            "--submit", action="store_true", help="Send its records straight to review (default: drafts)."
        )
        parser.add_argument("--expires", metavar="YYYY-MM-DD", help="The token works through this day.")
        parser.add_argument(
            "--webhook-url", default="", metavar="URL", help="HTTPS callback for status changes."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expires_at = expiry_end_of(_date(options["expires"])) if options["expires"] else None
        try:
            client, token = api_client_create(
                actor=None,
                name=options["name"],
                branch_codes=options["branch"],
                submit_on_arrival=options["submit"],
                expires_at=expires_at,
                webhook_url=options["webhook_url"],
            )
        except ValidationError as exc:
            problems = [
                f"{OPTION_NAMES.get(field, field)}: {message}"
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
            raise CommandError("\n".join(problems)) from exc
        except PortalError as exc:
            raise CommandError(exc.message) from exc
        branches = ", ".join(sorted(b.code for b in client.branches.all()))
        arrival = "for review" if client.submit_on_arrival else "as drafts"
        lines = [
            f"Created API client {client.name} (user {client.user.username}) for branches {branches}; "
            f"its records arrive {arrival}.",
            "",
            "Token (shown this once; only its hash is kept):",
            f"  {token}",
            "",
            "Send it with every request:",
            f"  Authorization: Bearer {token}",
        ]
        if client.token_expires_at:
            lines.append(f"It expires at {client.token_expires_at:%Y-%m-%d %H:%M %Z}.")
        if client.webhook_secret:
            lines += [
                "",
                f"Webhook signing secret for {client.webhook_url} (shown this once):",
                f"  {client.webhook_secret}",
            ]
        self.stdout.write("\n".join(lines))
