"""Reads of the reconciliation page: accepted, registered and waiting records, in the user's branches.

Every figure is a bucket: a condition on the records, and the records list's query string that lists
exactly those records, so each count on the page links to the records behind it. The counts come from
one grouped query (branch by branch, one filtered COUNT per bucket), the searches from two more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from institutions.models import Institution, User
from records import selectors as record_selectors
from records.models import REGISTERED_STATUSES, KycRecord, Status

from .models import Outcome, SearchAttempt

# The ageing of records accepted by KwikID and not registered yet, in whole days since acceptance:
# (first day, last day or None for "and over").
AGEING: tuple[tuple[int, int | None], ...] = ((0, 3), (4, 7), (8, 10), (11, None))
# How far back the search figures look (the registry_search_day index serves the range).
SEARCH_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Bucket:
    """One figure of the page: which records it counts and the records list's filters for the same ones."""

    key: str
    label: str
    condition: Q
    params: dict[str, str]
    # Records KwikID accepted that the registry does not hold yet: an admin may have them searched now.
    waiting: bool = False
    # Shown indented under the figure it breaks down.
    detail: bool = False

    def query(self, branch_id: int | None = None) -> str:
        """The records list's query string for this bucket (in one branch when ``branch_id``)."""
        params = dict(self.params)
        if branch_id is not None:
            params["branch"] = str(branch_id)
        return urlencode(params)


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def buckets(today: date) -> list[Bucket]:
    """The page's figures as of ``today`` (the ageing counts local days since acceptance)."""

    def day(days_ago: int) -> date:
        return today - timedelta(days=days_ago)

    waiting = Q(status=Status.UPLOADED)
    ageing: list[Bucket] = []
    for first, last in AGEING:
        label = f"{first}\N{EN DASH}{last} days" if last is not None else f"Over {first - 1} days"
        condition, params = waiting, {"status": Status.UPLOADED.value, "date_on": "accepted"}
        if last is not None:
            # Accepted on or after the local day ``last`` days ago (the list bounds dates the same way).
            condition &= Q(uploaded_at__gte=_midnight(day(last)))
            params["date_from"] = day(last).isoformat()
        if first > 0:
            condition &= Q(uploaded_at__lt=_midnight(day(first - 1)))
            params["date_to"] = day(first).isoformat()
        key = f"waiting_{first}_{last}" if last is not None else f"waiting_over_{first - 1}"
        ageing.append(Bucket(key, label, condition, params, waiting=True, detail=True))
    overdue = ~Q(status__in=REGISTERED_STATUSES) & Q(upload_due_on__lt=today)
    return [
        # Every accepted record has its acceptance time (uploaded_at), registered since or not.
        Bucket(
            "accepted",
            "Accepted by KwikID, registered since or not",
            Q(uploaded_at__isnull=False),
            {"date_on": "accepted", "date_to": today.isoformat()},
        ),
        Bucket(
            "registered", "Registered at CKYCR", Q(status=Status.REGISTERED), {"status": Status.REGISTERED}
        ),
        Bucket(
            "preexisting",
            "Registered before upload",
            Q(status=Status.PREEXISTING),
            {"status": Status.PREEXISTING},
        ),
        Bucket("waiting", "Waiting for the registry", waiting, {"status": Status.UPLOADED}, waiting=True),
        *ageing,
        Bucket("overdue", "Overdue: not registered by the due date", overdue, {"due": "overdue"}),
        Bucket(
            "overdue_waiting",
            "of which accepted by KwikID, waiting for the registry",
            overdue & waiting,
            {"status": Status.UPLOADED, "due": "overdue"},
            waiting=True,
            detail=True,
        ),
    ]


@dataclass
class Cell:
    bucket: Bucket
    count: int
    query: str


@dataclass
class BranchRow:
    """One branch's figures (or the total of the user's branches, ``branch_id`` None)."""

    branch_id: int | None
    code: str
    name: str
    cells: list[Cell]

    @property
    def counts(self) -> dict[str, int]:
        return {cell.bucket.key: cell.count for cell in self.cells}


@dataclass
class SearchFigures:
    """An institution's CKYC searches: today's against its daily cap, unreadable answers, the last one."""

    institution: Institution
    today: int = 0
    unreadable_today: int = 0
    unreadable_window: int = 0
    last_search_at: datetime | None = None

    @property
    def cap(self) -> int:
        return self.institution.registration_daily_searches

    @property
    def cap_reached(self) -> bool:
        return self.today >= self.cap


@dataclass
class Reconciliation:
    today: date
    buckets: list[Bucket]
    total: BranchRow
    branches: list[BranchRow]
    searches: list[SearchFigures] = field(default_factory=list)
    search_window_days: int = SEARCH_WINDOW_DAYS


def _row(
    bucket_list: list[Bucket], counts: dict[str, Any], branch_id: int | None, code: str, name: str
) -> BranchRow:
    cells = [Cell(b, int(counts.get(b.key) or 0), b.query(branch_id)) for b in bucket_list]
    return BranchRow(branch_id, code, name, cells)


def reconciliation_get(user: User, *, today: date | None = None) -> Reconciliation:
    """The page's figures for the user's branches: three queries whatever the number of records."""
    today = today or timezone.localdate()
    bucket_list = buckets(today)
    grouped = (  # 1
        record_selectors.record_list(user)
        .order_by()
        .values("branch_id", "branch__code", "branch__name")
        .annotate(**{b.key: Count("pk", filter=b.condition) for b in bucket_list})
        .order_by("branch__code")
    )
    branches: list[BranchRow] = []
    totals: dict[str, int] = dict.fromkeys((b.key for b in bucket_list), 0)
    for row in grouped:
        values = cast(dict[str, Any], row)  # the annotations' names are the buckets' keys
        branches.append(
            _row(bucket_list, values, values["branch_id"], values["branch__code"], values["branch__name"])
        )
        for b in bucket_list:
            totals[b.key] += values[b.key]
    total = _row(bucket_list, totals, None, "", "All your branches")
    return Reconciliation(
        today=today, buckets=bucket_list, total=total, branches=branches, searches=_searches(user, today)
    )


def _searches(user: User, today: date) -> list[SearchFigures]:
    """The CKYC searches of the institutions of the user's branches (the daily cap is the institution's)."""
    institutions = Institution.objects.filter(  # 2
        pk__in=record_selectors.branch_list(user).values("institution_id")
    ).order_by("name")
    figures = {inst.pk: SearchFigures(inst) for inst in institutions}
    midnight = _midnight(today)
    rows = (  # 3
        SearchAttempt.objects.filter(
            institution_id__in=list(figures),
            created_at__gte=_midnight(today - timedelta(days=SEARCH_WINDOW_DAYS - 1)),
        )
        .order_by()
        .values("institution_id")
        .annotate(
            today=Count("pk", filter=Q(created_at__gte=midnight)),
            unreadable_today=Count("pk", filter=Q(created_at__gte=midnight, outcome=Outcome.UNREADABLE)),
            unreadable_window=Count("pk", filter=Q(outcome=Outcome.UNREADABLE)),
            last_search_at=Max("created_at"),
        )
    )
    for row in rows:
        entry = figures[row["institution_id"]]
        entry.today = row["today"]
        entry.unreadable_today = row["unreadable_today"]
        entry.unreadable_window = row["unreadable_window"]
        entry.last_search_at = row["last_search_at"]
    return list(figures.values())


def bucket_get(key: str, *, today: date | None = None) -> Bucket | None:
    """The bucket of that key as of today, or None when there is none."""
    return next((b for b in buckets(today or timezone.localdate()) if b.key == key), None)


def bucket_records(user: User, bucket: Bucket, *, branch_id: int | None = None) -> QuerySet[KycRecord]:
    """The user's records a bucket counts (in one of their branches when ``branch_id``)."""
    records = record_selectors.record_list(user).filter(bucket.condition)
    if branch_id is not None:
        records = records.filter(branch_id=branch_id)
    return records
