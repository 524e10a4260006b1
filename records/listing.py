"""The records list's query language: filters, search, sort, and seek ("keyset") pagination.

Pure of HTTP: the view parses the query string with RecordListForm, the selectors apply ``ListQuery``.
Pages are found by seeking past the last row shown (``WHERE (col, id) > (v, pk) ORDER BY col, id LIMIT n``),
never by OFFSET, and the total is counted only up to COUNT_CAP: any page, first or ten-thousandth, costs
the same few index reads at a million records.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django import forms
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Upper

from .models import KycRecord, Status

PER_PAGE = 50
COUNT_CAP = 1000
PAN_PATTERN = re.compile(r"^[A-Za-z]{5}[0-9]{4}[A-Za-z]$")
# A KIN (CKYC number) as people write it: 14 digits, perhaps grouped by spaces or hyphens.
KIN_PATTERN = re.compile(r"^[0-9]{14}$")
KIN_SEPARATORS = re.compile(r"[\s-]")


@dataclass(frozen=True)
class Sort:
    """A sort the list offers: an indexed, never-null column (ties broken by id, in the same direction)."""

    label: str
    column: str  # a model field, or "ref" for UPPER(kyc_ref_no)
    ascending: bool


SORTS: dict[str, Sort] = {
    "-updated": Sort("Last change, newest first", "updated_at", ascending=False),
    "updated": Sort("Last change, oldest first", "updated_at", ascending=True),
    "-created": Sort("Entered, newest first", "created_at", ascending=False),
    "created": Sort("Entered, oldest first", "created_at", ascending=True),
    # Only records with a running clock (a due date, not yet accepted by KwikID) have a deadline to sort by.
    "due": Sort("Due date, most urgent first", "upload_due_on", ascending=True),
    "-due": Sort("Due date, latest first", "upload_due_on", ascending=False),
    "ref": Sort("KYC reference number, A to Z", "ref", ascending=True),
    "-ref": Sort("KYC reference number, Z to A", "ref", ascending=False),
}
DEFAULT_SORT = "-updated"
# The checker's queue: submitted records, waiting longest first (every one has a submitted_at).
QUEUE_SORTS: dict[str, Sort] = {"submitted": Sort("Waiting longest first", "submitted_at", ascending=True)}
ALL_SORTS = SORTS | QUEUE_SORTS

SEARCH_BY = (
    ("auto", "Anything"),
    ("ref", "KYC ref. no. (start)"),
    ("pan", "PAN (exact)"),
    ("kin", "CKYC no. (exact)"),
    ("name", "Name"),
)
SEARCH_LABELS = {
    "ref": "as the start of a KYC ref. no.",
    "pan": "as a PAN, exactly",
    "kin": "as a CKYC number (KIN), exactly",
    "name": "as a name, whole words",
    "ref_or_name": "as a KYC ref. no. or a name",
}
# The dates the list filters on: timestamps are bounded by local midnights (so that their index serves the
# filter), the others are plain dates.
TIMESTAMP_FIELDS = {"created": "created_at", "accepted": "uploaded_at", "registered": "registered_at"}
DATE_FIELDS = {"verified": "kyc_verification_date", "due": "upload_due_on"}
DATE_CHOICES = (
    ("created", "Entered"),
    ("verified", "KYC verified"),
    ("due", "Due"),
    ("accepted", "Accepted by KwikID"),
    ("registered", "Registered at CKYCR"),
)
DUE_CHOICES = (("", "Any deadline"), ("overdue", "Overdue"), ("soon", "Due within 2 days"))


@dataclass
class ListQuery:
    """What the user asked of the list, already validated (ids are among the choices the user may see)."""

    status: str = ""
    branch: int | None = None
    maker: int | None = None
    batch: int | None = None
    date_on: str = "created"
    date_from: date | None = None
    date_to: date | None = None
    due: str = ""
    q: str = ""
    by: str = "auto"
    sort: str = DEFAULT_SORT
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    # Set by the selector when "auto" had to ask the database (letters only: a reference or a name?).
    resolved_by: str = ""

    @property
    def search_by(self) -> str:
        """The search to run: "auto" picks PAN for a PAN's shape, the KIN for 14 digits (spaces and hyphens
        between them allowed), the reference for anything else with a digit,
        the name for several words, and "ref_or_name" for one word of letters only (MUMQA is the start of a
        reference, RAVI a name: the selector decides by whether a reference begins so)."""
        if self.resolved_by:
            return self.resolved_by
        if self.by != "auto":
            return self.by
        if PAN_PATTERN.match(self.q):
            return "pan"
        if is_kin(self.q):
            return "kin"
        if any(ch.isdigit() for ch in self.q):
            return "ref"
        return "name" if len(self.q.split()) > 1 else "ref_or_name"

    @property
    def search_label(self) -> str:
        """How the search was read, in words, for the line above the results."""
        return SEARCH_LABELS.get(self.search_by, self.search_by)


def kin_digits(text: str) -> str:
    """The KIN as the registry writes it (14 digits), from the way a person typed it."""
    return KIN_SEPARATORS.sub("", text)


def is_kin(text: str) -> bool:
    """Whether the text is a KIN: 14 digits, perhaps with spaces or hyphens between groups."""
    return bool(KIN_PATTERN.match(kin_digits(text)))


class RecordListForm(forms.Form):
    """The list's filters from the query string; a bad value is reported by name and otherwise ignored."""

    q = forms.CharField(label="Search", required=False, max_length=60)
    by = forms.ChoiceField(label="Search in", choices=SEARCH_BY, required=False)
    status = forms.ChoiceField(label="Status", required=False)
    branch = forms.TypedChoiceField(label="Branch", coerce=int, required=False, empty_value=None)
    maker = forms.TypedChoiceField(label="Maker", coerce=int, required=False, empty_value=None)
    batch = forms.IntegerField(label="Upload batch no.", required=False, min_value=1)
    due = forms.ChoiceField(label="Deadline", choices=DUE_CHOICES, required=False)
    date_on = forms.ChoiceField(label="Date", choices=DATE_CHOICES, required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(
        label="Sort by", choices=[(k, s.label) for k, s in SORTS.items()], required=False
    )

    def __init__(
        self,
        data: Any,
        *,
        branches: list[tuple[int, str]],
        makers: list[tuple[int, str]],
        statuses: list[tuple[str, str]] | None = None,
        sorts: dict[str, Sort] | None = None,
    ) -> None:
        super().__init__(data)
        self.sorts = sorts or SORTS
        self.fields["sort"].choices = [(k, s.label) for k, s in self.sorts.items()]  # type: ignore[attr-defined]
        self.fields["status"].choices = [("", "All statuses"), *(statuses or Status.choices)]  # type: ignore[attr-defined]
        self.fields["branch"].choices = [("", "All my branches"), *branches]  # type: ignore[attr-defined]
        self.fields["maker"].choices = [("", "Anyone"), *makers]  # type: ignore[attr-defined]
        self.cursor_error = False
        for bound in self.fields.values():
            is_select = isinstance(bound.widget, forms.Select)
            bound.widget.attrs["class"] = (
                "form-select form-select-sm" if is_select else "form-control form-control-sm"
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            # Both are left out: a range that ends before it starts matches nothing, silently.
            cleaned.pop("date_from")
            self.add_error(
                "date_to",
                f"{end:%d %b %Y} is before From ({start:%d %b %Y}), so the date range was left out: "
                "swap the dates",
            )
        return cleaned

    def list_query(self) -> ListQuery:
        """The valid part of the request (call after is_valid(); invalid fields are left out)."""
        self.is_valid()
        values = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        query = ListQuery(
            status=values.get("status") or "",
            branch=values.get("branch"),
            maker=values.get("maker"),
            batch=values.get("batch"),
            date_on=values.get("date_on") or "created",
            date_from=values.get("date_from"),
            date_to=values.get("date_to"),
            due=values.get("due") or "",
            q=(values.get("q") or "").strip(),
            by=values.get("by") or "auto",
            sort=values.get("sort") or next(iter(self.sorts)),
        )
        if query.due and not values.get("sort") and "due" in self.sorts:
            # Overdue or due soon: most urgent first unless asked otherwise (and the due index serves it).
            query.sort = "due"
            data = self.data.copy()  # type: ignore[attr-defined]  # a QueryDict: the select shows the order used
            data["sort"] = "due"
            self.data = data
        for name in ("after", "before"):
            raw = self.data.get(name)
            if raw:
                cursor = decode_cursor(raw, self.sorts[query.sort])
                if cursor is None:
                    self.cursor_error = True
                setattr(query, name, cursor)
        return query


# Cursors ---------------------------------------------------------------------------------------------------


def sort_value(record: KycRecord, sort: Sort) -> Any:
    if sort.column == "ref":
        return record.kyc_ref_no.upper()
    return getattr(record, sort.column)


def encode_cursor(record: KycRecord, sort: Sort) -> str:
    """An opaque, URL-safe bookmark of a row's place in the sort (its sort value and id)."""
    value = sort_value(record, sort)
    if isinstance(value, date | datetime):
        value = value.isoformat()
    raw = json.dumps([value, record.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, sort: Sort) -> tuple[Any, int] | None:
    """The (value, id) a cursor holds, or None when it is not one this sort made (a tampered URL)."""
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(pk, int) or not isinstance(value, str):
            return None
        if sort.column in ("updated_at", "created_at", "submitted_at"):
            return datetime.fromisoformat(value), pk
        if sort.column == "upload_due_on":
            return date.fromisoformat(value), pk
        return value, pk
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def sort_expression(sort: Sort) -> Any:
    return Upper("kyc_ref_no") if sort.column == "ref" else F(sort.column)


def ordered(records: QuerySet[KycRecord], sort: Sort, *, reverse: bool = False) -> QuerySet[KycRecord]:
    """Order by the sort's column then id, both the same way (what the (column, id) indexes hold)."""
    ascending = sort.ascending != reverse
    expression = sort_expression(sort)
    by_id = F("id").asc() if ascending else F("id").desc()
    return records.order_by(expression.asc() if ascending else expression.desc(), by_id)


def seek(
    records: QuerySet[KycRecord], sort: Sort, cursor: tuple[Any, int], *, reverse: bool = False
) -> QuerySet[KycRecord]:
    """Rows after ``cursor`` in the sort (before it when ``reverse``).

    Written as ``col >= v AND (col > v OR id > pk)`` rather than a bare OR, so that PostgreSQL starts its
    index scan at v instead of filtering from the first row (the cost of a page must not grow with depth).
    """
    value, pk = cursor
    forward = sort.ascending != reverse
    col = "ref_key" if sort.column == "ref" else sort.column
    if sort.column == "ref":
        records = records.alias(ref_key=Upper("kyc_ref_no"))
    beyond, strictly, past_id = ("gte", "gt", "gt") if forward else ("lte", "lt", "lt")
    return records.filter(
        Q(**{f"{col}__{beyond}": value}),
        Q(**{f"{col}__{strictly}": value}) | Q(**{f"pk__{past_id}": pk}),
    )


@dataclass
class SeekPage:
    """One page of a seek-paginated list: its rows, whether there are more either way, and the cursors."""

    rows: list[KycRecord]
    sort: Sort
    has_next: bool
    has_previous: bool
    count: int  # capped at COUNT_CAP + 1

    @property
    def object_list(self) -> list[KycRecord]:
        """The rows, under the name Django's paginator pages use (templates and tests that expect it)."""
        return self.rows

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.count > COUNT_CAP else f"{self.count:,}"

    @property
    def next_cursor(self) -> str:
        return encode_cursor(self.rows[-1], self.sort) if self.rows and self.has_next else ""

    @property
    def previous_cursor(self) -> str:
        return encode_cursor(self.rows[0], self.sort) if self.rows and self.has_previous else ""


def page_of(
    records: QuerySet[KycRecord], query: ListQuery, *, per_page: int | None = None, counted: bool = True
) -> SeekPage:
    """The page the query asks for: two queries at most (the rows, plus a capped count)."""
    per_page = per_page or PER_PAGE
    sort = ALL_SORTS[query.sort]
    # Counting stops at COUNT_CAP + 1 rows: "1,000+" costs the same at a thousand records or a million.
    count = records.order_by()[: COUNT_CAP + 1].count() if counted else 0
    if query.before is not None:
        rows = list(
            ordered(seek(records, sort, query.before, reverse=True), sort, reverse=True)[: per_page + 1]
        )
        has_previous = len(rows) > per_page
        rows = rows[:per_page][::-1]
        return SeekPage(rows, sort, has_next=True, has_previous=has_previous, count=count)
    if query.after is not None:
        records = seek(records, sort, query.after)
    rows = list(ordered(records, sort)[: per_page + 1])
    return SeekPage(
        rows[:per_page],
        sort,
        has_next=len(rows) > per_page,
        has_previous=query.after is not None,
        count=count,
    )
