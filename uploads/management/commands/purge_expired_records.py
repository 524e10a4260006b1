"""Delete KYC records whose customer relationship closed more than the retention period ago.

PMLA and RBI's KYC Master Direction keep identification records at least 5 years after the relationship
ends; after that, DPDP's erasure duty applies. Dry run by default: --apply deletes. Audited either way.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from institutions.models import AuditEvent, Role, User
from records.models import KycRecord
from uploads.models import BatchItem

RETENTION_YEARS = 5


def retention_cutoff(today: date) -> date:
    """Relationships closed before this date are past retention."""
    try:
        return today.replace(year=today.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - RETENTION_YEARS, day=28)


class Command(BaseCommand):
    help = "List (default) or delete (--apply) records whose relationship closed more than 5 years ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="delete; without it nothing is changed")
        parser.add_argument("--as", dest="username", required=True, help="the admin carrying out the purge")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = User.objects.filter(username=options["username"], role=Role.ADMIN, is_active=True).first()
        if actor is None:
            raise CommandError(f"{options['username']!r} is not an active admin: only admins purge records.")
        cutoff = retention_cutoff(timezone.localdate())
        expired = KycRecord.objects.filter(relationship_closed_on__lt=cutoff).order_by("pk")
        refs = list(expired.values_list("kyc_ref_no", flat=True))
        for ref in refs:
            self.stdout.write(f"{'purge' if options['apply'] else 'would purge'} {ref}")
        with transaction.atomic():
            if options["apply"] and refs:
                ids = list(expired.values_list("pk", flat=True))
                BatchItem.objects.filter(record_id__in=ids).delete()
                KycRecord.objects.filter(pk__in=ids).delete()  # their events go with them; this line stays
            AuditEvent.objects.create(
                actor=actor,
                action="records_purged" if options["apply"] else "records_purge_dry_run",
                object_type="KycRecord",
                detail={"cutoff": cutoff.isoformat(), "count": len(refs), "kyc_ref_nos": refs},
            )
        verb = "Purged" if options["apply"] else "Dry run: would purge"
        self.stdout.write(f"{verb} {len(refs)} records whose relationship closed before {cutoff}.")
