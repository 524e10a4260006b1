"""Create or update a portal user with a role and branches; the password from the environment or stdin."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from institutions.models import Branch, Role, User


class Command(BaseCommand):
    help = "Create or update a portal user. Password from PORTAL_USER_PASSWORD, else the first line of stdin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--branch", action="append", default=[], metavar="CODE")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        codes = options["branch"]
        branches = list(Branch.objects.filter(code__in=codes))
        found = [b.code for b in branches]
        missing = sorted(set(codes) - set(found))
        if missing:
            raise CommandError(f"No such branch: {', '.join(missing)}. Create it with configure_institution.")
        if len(found) != len(set(found)):
            raise CommandError("A branch code is used by more than one institution; rename one of them.")
        if options["role"] in (Role.MAKER, Role.CHECKER) and not branches:
            raise CommandError("Makers and checkers need at least one --branch.")
        password = os.environ.get("PORTAL_USER_PASSWORD")
        if password is None:
            password = sys.stdin.readline().rstrip("\n")
        user = User.objects.filter(username=options["username"]).first()
        created = user is None
        user = user or User(username=options["username"])
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("password: " + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user.role = options["role"]
            user.email = options["email"] or user.email
            # Admins manage branches and users in the administration pages.
            user.is_staff = user.is_superuser = options["role"] == Role.ADMIN
            user.is_active = True
            user.set_password(password)
            user.save()
            user.branches.set(branches)
        self.stdout.write(
            f"{'Created' if created else 'Updated'} {user.username} ({user.get_role_display()}) "
            f"for branches {', '.join(sorted(found)) or '(all, read-only)'}."
        )
