"""The daily cap's count kept per institution and local day (SearchDay), filled from the searches already
made; and an index of the searches in flight, so that neither count reads the whole schedule or the day's
searches at every claim."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone


def count_searches_made(apps, schema_editor):
    """Each local day's searches, as registry.services counts them (the day of their created_at)."""
    SearchAttempt = apps.get_model("registry", "SearchAttempt")
    SearchDay = apps.get_model("registry", "SearchDay")
    days = (
        SearchAttempt.objects.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("institution_id", "day")
        .annotate(searches=Count("id"))
        .order_by()
    )
    SearchDay.objects.bulk_create(
        (SearchDay(institution_id=d["institution_id"], day=d["day"], searches=d["searches"]) for d in days),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("institutions", "0006_auditevent_append_only"),
        ("registry", "0003_searchattempt_kept_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("searches", models.PositiveIntegerField(default=0)),
                (
                    "institution",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="institutions.institution",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("institution", "day"), name="search_day_per_institution")
                ],
            },
        ),
        migrations.AddIndex(
            model_name="registrycheck",
            index=models.Index(
                condition=models.Q(("claimed_until__isnull", False)),
                fields=["institution", "claimed_until"],
                name="registry_check_in_flight",
            ),
        ),
        migrations.RunPython(count_searches_made, migrations.RunPython.noop),
    ]
