"""The dashboard: its figures per branch (counts by status, waiting, overdue, KwikID's answers, registration
at CKYCR) and the data of its charts, aggregated in SQL with a constant number of queries, kept a few
seconds in the cache; and the batches being sent now, for its live progress bars."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from institutions.models import Branch, User
from records import selectors as record_selectors
from records.models import DUE_SOON_DAYS, REGISTERED_STATUSES, KycRecord, RecordEvent, Status
from uploads.models import BatchItem, BatchStatus, UploadBatch


@dataclass
class Dashboard:
    branches: list[Branch]
    branch: Branch | None
    counts: dict[str, int]
    per_branch: list[dict[str, Any]]
    oldest_waiting: KycRecord | None
    uploaded_today: int
    rejected_30d: int
    accepted_30d: int
    overdue: int
    due_soon: int
    due_soon_days: int
    last_batch: UploadBatch | None
    daily: list[dict[str, Any]]
    computed_at: datetime

    @property
    def registered(self) -> int:
        """Records the registry holds with a KIN dated on or after their upload."""
        return self.counts[Status.REGISTERED]

    @property
    def waiting_registration(self) -> int:
        """Records KwikID accepted that the registry does not hold yet (their clock still runs)."""
        return self.counts[Status.UPLOADED]

    @property
    def registered_before_upload(self) -> int:
        """Records the registry already held before the upload: each needs a person's look."""
        return self.counts[Status.PREEXISTING]

    @property
    def rejection_rate(self) -> float | None:
        settled = self.accepted_30d + self.rejected_30d
        return round(100 * self.rejected_30d / settled, 1) if settled else None


def dashboard_get(user: User, *, branch_id: int | None = None, days: int = 14) -> Dashboard:
    """The dashboard's figures for the user's branches (or one of them): 8 queries whatever the volume."""
    branches = list(record_selectors.branch_list(user).order_by("code"))  # 1 (+1 for a branch-less user)
    branch = next((b for b in branches if b.pk == branch_id), None)
    scope = [branch] if branch else branches
    records = KycRecord.objects.filter(branch__in=scope)
    today = timezone.localdate()
    midnight = timezone.make_aware(datetime.combine(today, time.min))

    # Counts by branch and status in one GROUP BY (the (branch, status, ...) index serves it).    # 2
    rows = records.order_by().values("branch_id", "status").annotate(n=Count("pk"))
    counts = dict.fromkeys(Status.values, 0)
    by_branch: dict[int, dict[str, int]] = {b.pk: dict.fromkeys(Status.values, 0) for b in scope}
    for row in rows:
        counts[row["status"]] += row["n"]
        by_branch.setdefault(row["branch_id"], dict.fromkeys(Status.values, 0))[row["status"]] = row["n"]
    # Today's uploads from today's events (indexed by time), not a scan of every record.          # 3
    uploaded_today = RecordEvent.objects.filter(
        action=RecordEvent.Action.UPLOADED, created_at__gte=midnight, record__branch__in=scope
    ).count()
    per_branch = [
        {"branch": b, "counts": by_branch[b.pk], "total": sum(by_branch[b.pk].values())} for b in scope
    ]

    oldest_waiting = (  # 4
        records.filter(status=Status.SUBMITTED)
        .select_related("branch")
        .order_by("submitted_at", "pk")
        .first()
    )

    due = records.exclude(status__in=REGISTERED_STATUSES).aggregate(  # 5
        overdue=Count("pk", filter=Q(upload_due_on__lt=today)),
        due_soon=Count(
            "pk", filter=Q(upload_due_on__gte=today, upload_due_on__lte=today + timedelta(days=DUE_SOON_DAYS))
        ),
    )

    # KwikID's answers per day (batch creation day), for the rejection rate and the trend chart.    # 6
    since = midnight - timedelta(days=max(days, 30) - 1)
    items = (
        BatchItem.objects.filter(batch__branch__in=scope, batch__created_at__gte=since)
        .filter(outcome__in=(BatchItem.Outcome.ACCEPTED, BatchItem.Outcome.REJECTED))
        .annotate(day=TruncDate("batch__created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day", "outcome")
        .annotate(n=Count("pk"))
    )
    per_day: dict[date, dict[str, int]] = {}
    accepted_30d = rejected_30d = 0
    for item in items:
        per_day.setdefault(item["day"], {})[item["outcome"]] = item["n"]
        if item["outcome"] == BatchItem.Outcome.ACCEPTED:
            accepted_30d += item["n"]
        else:
            rejected_30d += item["n"]
    daily = [
        {
            "day": day,
            "accepted": per_day.get(day, {}).get(BatchItem.Outcome.ACCEPTED, 0),
            "rejected": per_day.get(day, {}).get(BatchItem.Outcome.REJECTED, 0),
        }
        for day in (today - timedelta(days=n) for n in range(days - 1, -1, -1))
    ]

    last_batch = (  # 7
        UploadBatch.objects.filter(branch__in=scope, finished_at__isnull=False)
        .select_related("branch")
        .order_by("-finished_at", "-pk")
        .first()
    )
    return Dashboard(
        branches=branches,
        branch=branch,
        counts=counts,
        per_branch=per_branch,
        oldest_waiting=oldest_waiting,
        uploaded_today=uploaded_today,
        accepted_30d=accepted_30d,
        rejected_30d=rejected_30d,
        overdue=due["overdue"],
        due_soon=due["due_soon"],
        due_soon_days=DUE_SOON_DAYS,
        last_batch=last_batch,
        daily=daily,
        computed_at=timezone.now(),
    )


def dashboard_cached(user: User, *, branch_id: int | None = None) -> Dashboard:
    """dashboard_get, kept settings.DASHBOARD_CACHE_SECONDS per set of branches shown.

    Exact counts grow slow with the number of records; figures a few seconds old are good enough for a
    dashboard (it says when they were taken), and the progress bar stays live.
    """
    seconds = int(getattr(settings, "DASHBOARD_CACHE_SECONDS", 30))
    if seconds <= 0:
        return dashboard_get(user, branch_id=branch_id)
    ids = ",".join(
        str(pk) for pk in record_selectors.branch_list(user).order_by("pk").values_list("pk", flat=True)
    )
    key = "reports:dashboard:" + hashlib.sha256(f"{ids}|{branch_id}".encode()).hexdigest()
    data = cache.get(key)
    if data is None:
        data = dashboard_get(user, branch_id=branch_id)
        cache.set(key, data, seconds)
    return data


def sending_batches(user: User, branch: Branch | None) -> QuerySet[UploadBatch]:
    """Batches being sent now (for the live progress bars)."""
    batches = UploadBatch.objects.filter(status=BatchStatus.SENDING).select_related("branch")
    if branch is not None:
        return batches.filter(branch=branch)
    if not user.sees_all_branches:
        batches = batches.filter(branch__in=user.branches.all())
    return batches
