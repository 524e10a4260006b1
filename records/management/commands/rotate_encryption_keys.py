"""Re-encrypt every encrypted value with the newest key in FIELD_ENCRYPTION_KEYS; recompute PAN hashes.

Put the new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy, run this, then drop the
old keys. Rows stay readable throughout: any listed key decrypts. Safe to run twice.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

from ckycportal.crypto import keyed_hash
from ckycportal.fields import EncryptedTextField
from institutions.models import AuditEvent
from records.models import KycRecord, RecordEvent


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column with the newest FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        size = options["batch_size"]
        counts: dict[str, int] = {}
        for model in apps.get_models():
            names = encrypted_fields(model)
            if not names:
                continue
            done = 0
            rows_with_values = model._default_manager.all()
            if model is RecordEvent:
                # Only edits of personal data hold a token ("" is never encrypted): most events need none.
                rows_with_values = rows_with_values.exclude(changed_values="")
            pks = list(rows_with_values.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), size):
                with transaction.atomic():
                    # Loading decrypts with whichever key fits; saving encrypts with the newest.
                    rows = list(
                        model._default_manager.select_for_update().filter(pk__in=pks[start : start + size])
                    )
                    fields = names
                    if model is KycRecord:
                        # The PAN hash follows PII_HASH_KEY: recomputed here, so that key can change too.
                        for row in rows:
                            row.pan_hash = keyed_hash(row.pan) if row.pan else ""  # type: ignore[attr-defined]
                        fields = [*names, "pan_hash"]
                    model._default_manager.bulk_update(rows, fields)
                done += len(rows)
            counts[model._meta.label] = done
            self.stdout.write(f"{model._meta.label}: {done} rows re-encrypted ({', '.join(names)})")
        AuditEvent.objects.create(action="encryption_keys_rotated", detail={"rows": counts})
