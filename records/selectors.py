"""Every read the record pages need, already scoped to the user's branches (deny by default)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.text import capfirst

from institutions.models import Branch, User

from .codes import CODED_LISTS
from .masking import PII_FIELDS, mask_value
from .models import MAKER_ACTIONS, KycRecord, RecordEvent, Status
from .validation import FIELD_LABELS


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
        records = records.filter(kyc_ref_no__icontains=query.strip())
    return records


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


def record_get(user: User, pk: int) -> KycRecord:
    """One record, or 404 when it does not exist or belongs to another branch."""
    return get_object_or_404(record_list(user), pk=pk)


def event_changes(event: RecordEvent) -> list[dict[str, Any]]:
    """An edit event's diff as lines of label, old and new value (values were masked when stored).

    Events written before diffs were kept hold bare field names: they show the name without values.
    """
    lines: list[dict[str, Any]] = []
    for entry in event.changed_fields or []:
        if isinstance(entry, str):
            entry = {"field": entry}
        name = str(entry.get("field", ""))
        lines.append(
            {
                "field": name,
                "label": FIELD_LABELS.get(name, name),
                "old": entry.get("old"),
                "new": entry.get("new"),
                "has_values": "old" in entry,
                "masked": name in PII_FIELDS,
            }
        )
    return lines


def record_events(record: KycRecord) -> list[RecordEvent]:
    """The record's full history, oldest first, each edit with its diff (``changes``)."""
    events = list(record.events.select_related("actor").order_by("created_at", "pk"))
    for event in events:
        event.changes = event_changes(event)  # type: ignore[attr-defined]
    return events


def records_sharing_pan(record: KycRecord) -> QuerySet[KycRecord]:
    """Other records with the same PAN (by its keyed hash), a possible duplicate customer."""
    if not record.pan_hash:
        return KycRecord.objects.none()
    return KycRecord.objects.filter(pan_hash=record.pan_hash).exclude(pk=record.pk)


def status_counts(user: User) -> dict[str, int]:
    """How many of the user's records are in each status (every status present, zero included)."""
    counts = dict.fromkeys(Status.values, 0)
    rows = record_list(user).order_by().values("status").annotate(n=Count("pk"))
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Record", ("kyc_ref_no", "pan")),
    (
        "Basic details",
        (
            "applicant_name_title",
            "applicant_first_name",
            "applicant_middle_name",
            "gender",
            "dob",
            "applicant_rel_details_flag",
            "applicant_rel_name_title",
            "applicant_rel_first_name",
            "applicant_rel_middle_name",
            "differently_abled_flag",
            "impairment_type",
            "impairment_percentage",
            "udid_number",
        ),
    ),
    (
        "Proof of address",
        (
            "poa_document",
            "poa_document_number",
            "poa_address_line_1",
            "poa_vtc",
            "poa_state",
            "poa_country",
            "poa_pin_code",
        ),
    ),
    (
        "Current address",
        (
            "current_address_same_as_poa_address",
            "current_address_line_1",
            "current_vtc",
            "current_state",
            "current_country",
            "current_pin_code",
        ),
    ),
    ("Contact details", ("mobile_isd", "mobile_number")),
    (
        "KYC verification details",
        (
            "kyc_declaration_date",
            "kyc_declaration_place",
            "kyc_verification_date",
            "kyc_type",
            "kyc_type_of_document_submitted",
            "kyc_verifier_name",
            "kyc_verifier_designation",
            "kyc_verifier_branch",
            "kyc_verifier_employee_code",
        ),
    ),
)


def record_sections(record: KycRecord, problem_fields: set[str], *, reveal: bool) -> list[dict[str, Any]]:
    """The record's fields grouped as on the API page, each with its label, display value and API name.

    PII is masked unless ``reveal`` (the caller has checked the permission and written the audit event).
    Codes show with their label from the code book (inactive codes too).
    """
    from codelists.selectors import code_book

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
                    "label": capfirst(str(getattr(field, "verbose_name", name))),
                    "value": value,
                    "problem": name in problem_fields,
                }
            )
        sections.append({"title": title, "rows": rows})
    return sections
