"""Backfill the deadline clock and the name-search tokens of the records that existed before 0004.

Records entered before 0004 have no existing KIN, so each is due its institution's upload_due_days after
its KYC verification date. Name tokens are keyed hashes of each whole word of the applicant's name, as
``records.services.name_tokens`` makes them (copied here so later changes there do not change history).
"""

import hashlib
import hmac
import re
from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import ExpressionWrapper, F

_NOT_NAME_CHARS = re.compile(r"[^0-9A-Z]")
BATCH = 2000


def _token(word):
    normalised = "".join(f"name:{word}".split()).upper()
    return hmac.new(settings.PII_HASH_KEY.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def backfill(apps, schema_editor):
    Institution = apps.get_model("institutions", "Institution")
    KycRecord = apps.get_model("records", "KycRecord")
    RecordNameToken = apps.get_model("records", "RecordNameToken")
    for institution in Institution.objects.all():
        KycRecord.objects.filter(
            branch__institution=institution, kyc_verification_date__isnull=False, upload_due_on__isnull=True
        ).update(
            upload_due_on=ExpressionWrapper(
                F("kyc_verification_date") + timedelta(days=institution.upload_due_days),
                output_field=models.DateField(),
            )
        )
    tokens = []
    names = KycRecord.objects.only("id", "applicant_first_name", "applicant_middle_name")
    for record in names.iterator(chunk_size=BATCH):
        text = f"{record.applicant_first_name or ''} {record.applicant_middle_name or ''}"
        words = {_NOT_NAME_CHARS.sub("", word.upper()) for word in text.split()}
        tokens += [RecordNameToken(record_id=record.pk, token_hash=_token(w)) for w in sorted(words) if w]
        if len(tokens) >= BATCH:
            RecordNameToken.objects.bulk_create(tokens, ignore_conflicts=True)
            tokens = []
    RecordNameToken.objects.bulk_create(tokens, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("institutions", "0002_compliance_settings"),
        ("records", "0004_list_filters_deadline_name_tokens"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
