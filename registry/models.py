"""Following accepted records to the registry: when each is asked about next, and every search made.

KwikID's 200 means "accepted for processing". The registry holds a record only once it has given the
customer a KIN; the CKYC search finds it (``registry.services``), and ``records`` keeps the KIN itself.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ckycportal.triggers import append_only
from institutions.models import Institution
from records.models import KycRecord


class Outcome(models.TextChoices):
    REGISTERED = "registered", "Registered"
    PREEXISTING = "preexisting", "Registered before upload"
    NOT_FOUND = "not_found", "Not found yet"
    UNREADABLE = "unreadable", "Unreadable answer"
    TOKEN_REFUSED = "token_refused", "Token refused"
    FAILED = "failed", "KwikID unavailable"
    REFUSED = "refused", "Search refused"


class RegistryCheck(models.Model):
    """One accepted record's place in the checking schedule: made when it is first looked at, kept after.

    ``next_check_at`` is null once the record is registered or the institution's days of checking ran out
    (``gave_up_at``). A pass holds the rows it searches until ``claimed_until``, so two passes never search
    for one record at once and a pass that died lets go by itself.
    """

    record = models.OneToOneField(KycRecord, on_delete=models.CASCADE, related_name="registry_check")
    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="+", db_index=False)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks_made = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=14, choices=Outcome.choices, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # A pass takes the institution's due rows, soonest first.
            models.Index(
                fields=["institution", "next_check_at", "id"],
                condition=Q(next_check_at__isnull=False),
                name="registry_check_due",
            ),
            # The daily cap counts the institution's searches in flight (claimed, not yet kept): only those
            # rows have a lease (keeping a search clears it), so this index stays as small as the passes'
            # claims however many records the schedule has ever held. Without it the count read every row.
            models.Index(
                fields=["institution", "claimed_until"],
                condition=Q(claimed_until__isnull=False),
                name="registry_check_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"registry check of record {self.record_id}"


class SearchAttempt(models.Model):
    """One CKYC search, immutable: what came back, never who the customer is.

    ``note`` keeps, for support, what could not be read, identifiers masked and the photo never. The
    daily cap counts them per institution and local day in ``SearchDay``, written with them.
    """

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="+", db_index=False)
    record = models.ForeignKey(KycRecord, null=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    # When the pass kept the search: the same moment it counted the day's searches with, so that the
    # search is counted against the day that allowed it.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["institution", "created_at"], name="registry_search_day")]
        # Append-only in the database: UPDATE and DELETE are refused (ckycportal.triggers).
        triggers = append_only("searchattempt")

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class SearchDay(models.Model):
    """How many searches an institution made on one local day: the daily cap's count.

    ``registry.services`` adds a batch's searches here in the transaction that keeps their SearchAttempt
    rows (the only place that makes them), so the count always equals those rows; a claim reads one row
    instead of counting the day's searches, which took longer with every search made that day.
    """

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    searches = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["institution", "day"], name="search_day_per_institution")
        ]

    def __str__(self) -> str:
        return f"{self.searches} searches on {self.day}"
