"""Every read the record pages need, already scoped to the user's branches (deny by default)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import capfirst

from ckycportal.crypto import keyed_hash
from codelists.codes import CODED_LISTS
from codelists.selectors import code_book
from institutions.models import Branch, Role, User
from kwikid.fields import FIELD_LABELS, KYC_VERIFICATION_DETAILS, SECTION_TITLES
from kwikid.fields import SECTIONS as API_SECTIONS

from . import services
from .listing import DATE_FIELDS, TIMESTAMP_FIELDS, ListQuery, SeekPage, kin_digits, page_of
from .masking import PII_FIELDS, mask_value
from .models import (
    DUE_SOON_DAYS,
    MAKER_ACTIONS,
    REGISTERED_STATUSES,
    KycRecord,
    RecordEvent,
    RecordNameToken,
    Status,
)
from .services import name_tokens


def branch_list(user: User) -> QuerySet[Branch]:
    """The branches whose records the user may see."""
    if user.sees_all_branches:
        return Branch.objects.filter(is_active=True).select_related("institution")
    return user.branches.filter(is_active=True).select_related("institution")


def record_list(user: User, *, status: str | None = None, query: str = "") -> QuerySet[KycRecord]:
    """Records of the user's branches, newest change first; optional status filter and reference search."""
    records = KycRecord.objects.select_related("branch", "created_by")
    if not user.sees_all_branches:
        records = records.filter(branch__in=user.branches.all())
    if status:
        records = records.filter(status=status)
    if query:
        records = records.filter(kyc_ref_no__istartswith=query.strip())
    return records


# What a list row shows: the rest of a record (most of it encrypted) is neither read nor decrypted.
LIST_COLUMNS = (
    "kyc_ref_no",
    "pan",
    "applicant_first_name",
    "applicant_middle_name",
    "status",
    "branch__code",
    "created_by__username",
    "submitted_at",
    "created_at",
    "updated_at",
    "upload_due_on",
)


def record_search(user: User, query: ListQuery) -> QuerySet[KycRecord]:
    """The user's records matching the list's filters and search (unordered; listing.page_of pages it)."""
    records = record_list(user).only(*LIST_COLUMNS)
    if query.status:
        records = records.filter(status=query.status)
    if query.branch is not None:
        records = records.filter(branch_id=query.branch)
    if query.maker is not None:
        records = records.filter(created_by_id=query.maker)
    if query.batch is not None:
        records = records.filter(batch_items__batch_id=query.batch)
    if query.date_on in TIMESTAMP_FIELDS:
        # As bounds on the timestamp itself (local midnights), so that the column's index serves it;
        # created_at__date would wrap the column in a time zone conversion no index holds.
        column = TIMESTAMP_FIELDS[query.date_on]
        if query.date_from:
            records = records.filter(**{f"{column}__gte": _local_midnight(query.date_from)})
        if query.date_to:
            records = records.filter(**{f"{column}__lt": _local_midnight(query.date_to + timedelta(days=1))})
    else:
        lookup = DATE_FIELDS[query.date_on]
        if query.date_from:
            records = records.filter(**{f"{lookup}__gte": query.date_from})
        if query.date_to:
            records = records.filter(**{f"{lookup}__lte": query.date_to})
    today = timezone.localdate()
    if query.due or query.sort in ("due", "-due"):
        # The clock runs until the registry holds the record (the partial index record_due_open holds these).
        records = records.exclude(status__in=REGISTERED_STATUSES).filter(upload_due_on__isnull=False)
    if query.due == "overdue":
        records = records.filter(upload_due_on__lt=today)
    elif query.due == "soon":
        records = records.filter(
            upload_due_on__gte=today, upload_due_on__lte=today + timedelta(days=DUE_SOON_DAYS)
        )
    if query.q:
        if query.search_by == "ref_or_name":
            # One word of letters: the start of a reference (MUMQA, DEL) when one of these records has such
            # a reference, else a name. One indexed probe, so each search stays an indexed one (an OR of
            # the two would scan the whole table at a million records).
            is_ref = records.filter(kyc_ref_no__istartswith=query.q).exists()
            query.resolved_by = "ref" if is_ref else "name"
        records = _searched(records, query.q, query.search_by)
    return records


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _searched(records: QuerySet[KycRecord], text: str, by: str) -> QuerySet[KycRecord]:
    if by == "pan":
        # Exact, through the keyed hash: the PAN column itself is encrypted.
        return records.filter(pan_hash=keyed_hash(text))
    if by == "kin":
        # Exact, through the keyed hash (index record_kin_hash): the KIN column itself is encrypted.
        return records.filter(ckyc_number_hash=keyed_hash(kin_digits(text)))
    if by == "name":
        tokens = name_tokens(text)
        if not tokens:
            return records.none()
        for token in tokens:  # every word must match (AND), each through the (token_hash, record) index
            records = records.filter(
                Exists(RecordNameToken.objects.filter(token_hash=token, record_id=OuterRef("pk")))
            )
        return records
    # A prefix of the reference, case-insensitively (UPPER(kyc_ref_no) LIKE 'ABC%': index record_ref_prefix).
    return records.filter(kyc_ref_no__istartswith=text)


def record_page(user: User, query: ListQuery) -> SeekPage:
    """One page of the records list: a constant number of queries whatever the page or the table's size."""
    return page_of(record_search(user, query), query)


def maker_choices(user: User) -> list[tuple[int, str]]:
    """Makers whose records the user may see, for the list's filter (one query)."""
    makers = User.objects.filter(role=Role.MAKER)
    if not user.sees_all_branches:
        makers = makers.filter(branches__in=user.branches.all())
    return [(pk, name) for pk, name in makers.order_by("username").values_list("pk", "username").distinct()]


def branch_choices(user: User) -> list[tuple[int, str]]:
    """The user's branches, for the list's filter (one query)."""
    return [(b.pk, f"{b.code} {b.name}") for b in branch_list(user).order_by("code")]


def review_queue(user: User) -> QuerySet[KycRecord]:
    """Submitted records a checker may decide: their branches, oldest first, never their own."""
    own = RecordEvent.objects.filter(actor=user, action__in=MAKER_ACTIONS).values("record_id")
    return (
        record_list(user, status=Status.SUBMITTED)
        .exclude(created_by=user)
        .exclude(submitted_by=user)
        .exclude(pk__in=own)
        .order_by("submitted_at", "pk")
    )


def review_queue_page(user: User, query: ListQuery) -> SeekPage:
    """One page of the checker's queue, filtered like the records list (status and sort fixed)."""
    query.status, query.sort = Status.SUBMITTED, "submitted"
    records = record_search(user, query)
    own = RecordEvent.objects.filter(actor=user, action__in=MAKER_ACTIONS).values("record_id")
    records = records.exclude(created_by=user).exclude(submitted_by=user).exclude(pk__in=own)
    return page_of(records, query)


def record_get(user: User, pk: int) -> KycRecord:
    """One record, or 404 when it does not exist or belongs to another branch."""
    return get_object_or_404(record_list(user).select_related("reviewed_by"), pk=pk)


def _model_label(name: str) -> str:
    try:
        return capfirst(str(getattr(KycRecord._meta.get_field(name), "verbose_name", name)))
    except FieldDoesNotExist:
        return name


def field_label(name: str) -> str:
    """A record field's label as the form, its errors, the record page and the history all show it."""
    return FIELD_LABELS.get(name) or _model_label(name)


def event_changes(event: RecordEvent, *, reveal: bool = False) -> list[dict[str, Any]]:
    """An edit event's diff as lines of label, old and new value.

    Personal data is shown as masked when stored, unless ``reveal`` (the caller checked that the user
    revealed the record, which is audited): then the event's encrypted clear values are shown. A masked
    line whose two sides look alike ("S••• → S•••") says so, so nobody reads it as "nothing changed".
    Events written before diffs were kept hold bare field names: they show the name without values.
    """
    clear = services.event_clear_values(event) if reveal else {}
    lines: list[dict[str, Any]] = []
    for entry in event.changed_fields or []:
        if isinstance(entry, str):
            entry = {"field": entry}
        name = str(entry.get("field", ""))
        old, new = entry.get("old"), entry.get("new")
        shown_clear = name in clear
        if shown_clear:
            old, new = clear[name]
        lines.append(
            {
                "field": name,
                "label": field_label(name),
                "old": old,
                "new": new,
                "has_values": "old" in entry,
                "masked": name in PII_FIELDS and not shown_clear,
                "looks_alike": name in PII_FIELDS and not shown_clear and "old" in entry and old == new,
            }
        )
    return lines


def record_events(record: KycRecord, *, reveal: bool = False) -> list[RecordEvent]:
    """The record's full history, oldest first, each edit with its diff (``changes``); personal data in
    the diffs in clear only with ``reveal`` (see event_changes)."""
    events = list(record.events.select_related("actor").order_by("created_at", "pk"))
    for event in events:
        event.changes = event_changes(event, reveal=reveal)  # type: ignore[attr-defined]
    return events


def record_uploads(record: KycRecord) -> list[Any]:
    """Every batch the record was in, newest first, with KwikID's word on it and the batch's last attempt.

    Read through the record's own relations (the uploads app sits above this one). The attempt's response
    body is left out: it may name other customers' records.
    """
    items = list(
        record.batch_items.select_related("batch")
        .prefetch_related("batch__attempts")
        .order_by("-batch__created_at", "-pk")
    )
    for item in items:
        attempts = sorted(item.batch.attempts.all(), key=lambda attempt: attempt.number, reverse=True)
        item.last_attempt = attempts[0] if attempts else None  # type: ignore[attr-defined]
        item.attempt_count = len(attempts)  # type: ignore[attr-defined]
    return items


def records_sharing_pan(record: KycRecord) -> QuerySet[KycRecord]:
    """Other records with the same PAN (by its keyed hash), a possible duplicate customer."""
    if not record.pan_hash:
        return KycRecord.objects.none()
    return KycRecord.objects.filter(pan_hash=record.pan_hash).exclude(pk=record.pk)


# The duplicate-PAN warning links at most this many records (a PAN on more is a problem of its own).
SAME_PAN_LINKS = 10


def same_pan_records(user: User, record: KycRecord) -> dict[str, Any]:
    """The record's possible duplicates for its page: the ones the user may open (to link, newest first, at
    most SAME_PAN_LINKS) and how many more of the institution's records share the PAN elsewhere, in branches
    the user does not see (a count only: neither their reference nor their branch is shown). Three queries."""
    same = records_sharing_pan(record).filter(branch__institution_id=record.branch.institution_id)
    total = same.count()
    if not total:
        return {"links": [], "unlisted": 0, "hidden": 0, "total": 0}
    visible = record_list(user).filter(pk__in=same.values("pk"))
    links = list(
        visible.select_related(None)
        .select_related("branch")
        .order_by("-updated_at", "-pk")
        .only("kyc_ref_no", "status", "branch__code")[:SAME_PAN_LINKS]
    )
    seen = visible.count() if len(links) == SAME_PAN_LINKS else len(links)
    return {"links": links, "unlisted": seen - len(links), "hidden": total - seen, "total": total}


def status_counts(user: User) -> dict[str, int]:
    """How many of the user's records are in each status (every status present, zero included)."""
    counts = dict.fromkeys(Status.values, 0)
    rows = record_list(user).order_by().values("status").annotate(n=Count("pk"))
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


# The record page's sections: the API's objects in the API's order (the catalogue's), with the portal's own
# field (the customer's existing KIN: never sent, it makes the record an update) before the verification.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    item
    for section, names in API_SECTIONS
    for item in (
        *((("Existing CKYC record", ("existing_ckyc_no",)),) if section == KYC_VERIFICATION_DETAILS else ()),
        (SECTION_TITLES[section], names),
    )
)


def record_sections(record: KycRecord, problem_fields: set[str], *, reveal: bool) -> list[dict[str, Any]]:
    """The record's fields grouped as on the API page, each with its label, display value and API name.

    PII is masked unless ``reveal`` (the caller has checked the permission and written the audit event).
    Codes show with their label from the code book (inactive codes too).
    """
    book = code_book()
    sections: list[dict[str, Any]] = []
    for title, names in SECTIONS:
        rows: list[dict[str, Any]] = []
        for name in names:
            field = KycRecord._meta.get_field(name)
            value = getattr(record, name)
            if not reveal and name in PII_FIELDS:
                value = mask_value(name, value)
            elif name in CODED_LISTS and value:
                label = book.label(CODED_LISTS[name], value) or value
                value = f"{label} ({value})" if value.isdigit() else label  # numeric codes stay visible
            elif isinstance(value, bool):
                value = "Yes" if value else "No"
            elif isinstance(value, date):
                value = f"{value:%d %b %Y}"
            rows.append(
                {
                    "name": name,
                    "label": FIELD_LABELS.get(name) or capfirst(str(getattr(field, "verbose_name", name))),
                    "value": value,
                    "problem": name in problem_fields,
                }
            )
        sections.append({"title": title, "rows": rows})
    return sections
