"""The audit log: record and configuration events merged newest first into one keyset-paged view
(its rows, its filters, and the rows of its CSV export), in the pages' words with personal data masked."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst

from ckycportal.logging import redact
from codelists.models import CODE_LIST_MODELS
from institutions.models import AuditEvent, Branch, Institution, Role, User
from institutions.selectors import institution_for
from records import selectors as record_selectors
from records.masking import mask_value
from records.models import KycRecord, RecordEvent, Status
from uploads.models import UploadBatch

RECORD, CONFIG = "r", "c"  # the two sources; "r" sorts after "c", which breaks ties of equal times
RECORD_ACTIONS = dict(RecordEvent.Action.choices)
CONFIG_ACTIONS = {
    "institution_configured": "Institution settings changed",
    "institution_change_proposed": "Institution change proposed (waits for a second administrator)",
    "institution_change_approved": "Institution change approved and applied",
    "institution_change_rejected": "Institution change rejected",
    "institution_change_withdrawn": "Institution change withdrawn",
    "institution_single_admin_opt_out": "Four eyes turned off (one administrator)",
    "institution_single_admin_opt_in": "Four eyes restored",
    "branch_created": "Branch created",
    "branch_updated": "Branch changed",
    "branch_deactivated": "Branch deactivated",
    "branch_reactivated": "Branch reactivated",
    "user_created": "User created",
    "user_updated": "User changed",
    "user_deactivated": "User deactivated",
    "user_reactivated": "User reactivated",
    "user_password_reset": "Password reset",
    "user_two_factor_reset": "Two-factor reset",
    "two_factor_enrolled": "Two-factor set up",
    "two_factor_replaced": "Two-factor authenticator replaced",
    "batch_retry_now": "Batch retried now",
    "batch_cancelled": "Batch cancelled",
    "batch_unknown_resolved": "Lost answer resolved",
    "pin_master_refreshed": "PIN master refreshed",
    "records_purge_dry_run": "Records purge listed (dry run)",
    "records_exported_unmasked": "Records exported with personal data",
    "records_exported": "Records exported",
    "code_entry_created": "Code entry created",
    "code_entry_changed": "Code entry changed",
    "import_uploaded": "Import file uploaded",
    "import_checked": "Import file checked",
    "import_refused": "Import file refused",
    "import_confirmed": "Import confirmed",
    "import_done": "Import done",
    "import_failed": "Import failed",
    "import_discarded": "Import discarded",
    "import_file_purged": "Import file deleted",
    "registry_check_now": "Registration check asked for",
    "api_client_created": "API client created",
    "api_client_updated": "API client changed",
    "api_client_token_rotated": "API client token rotated",
    "api_client_revoked": "API client revoked",
    "api_client_webhook_secret_rotated": "API client webhook secret replaced",
    "webhook_redelivered": "Webhook redelivered",
    "api.request": "Records received through the API",
    "api.refused": "API request refused",
}
STATUS_WORDS = dict(Status.choices)
PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilters:
    date_from: date | None = None
    date_to: date | None = None
    actor: str = ""
    action: str = ""
    branch: Branch | None = None
    ref: str = ""

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters (for paging and export links)."""
        values = {
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "actor": self.actor,
            "action": self.action,
            "branch": str(self.branch.pk) if self.branch else "",
            "ref": self.ref,
        }
        return {k: v for k, v in values.items() if v}


@dataclass
class AuditRow:
    source: str
    pk: int
    created_at: datetime
    actor: str
    action: str
    action_label: str
    object_label: str
    record_id: int | None = None
    branch: str = ""
    from_status: str = ""
    to_status: str = ""
    changes: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def key(self) -> tuple[datetime, str, int]:
        return (self.created_at, self.source, self.pk)

    @property
    def cursor(self) -> str:
        return f"{self.created_at.isoformat()}~{self.source}~{self.pk}"


def parse_cursor(value: str) -> tuple[datetime, str, int] | None:
    """The position after which a page starts, from its URL form; None for anything malformed."""
    try:
        stamp, source, pk = value.split("~")
        when = parse_datetime(stamp)
        if when is None or source not in (RECORD, CONFIG):
            return None
        return (when, source, int(pk))
    except ValueError:
        return None


def _before(cursor: tuple[datetime, str, int] | None, source: str) -> Q:
    """Rows of ``source`` that come after the cursor in (created_at, source, id) descending order."""
    if cursor is None:
        return Q()
    when, cursor_source, pk = cursor
    if source == cursor_source:
        return Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk)
    if source < cursor_source:  # at the same instant this source comes after the cursor's
        return Q(created_at__lte=when)
    return Q(created_at__lt=when)


def _time_bounds(filters: AuditFilters) -> Q:
    q = Q()
    tz = timezone.get_current_timezone()
    if filters.date_from:
        q &= Q(created_at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz))
    if filters.date_to:
        q &= Q(created_at__lt=datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz))
    return q


def _record_events(user: User, filters: AuditFilters, actor_id: int | None) -> QuerySet[RecordEvent] | None:
    if filters.action and filters.action not in RECORD_ACTIONS:
        return None
    events = RecordEvent.objects.filter(_time_bounds(filters))
    if not user.is_auditor:  # admins: their institution's branches; auditors: every branch
        events = events.filter(record__branch__institution=institution_for(user))
    if filters.action:
        events = events.filter(action=filters.action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if filters.branch:
        events = events.filter(record__branch=filters.branch)
    if filters.ref:
        ids = list(KycRecord.objects.filter(kyc_ref_no__iexact=filters.ref).values_list("pk", flat=True)[:10])
        events = events.filter(record_id__in=ids)
    return events


def _config_events(filters: AuditFilters, actor_id: int | None) -> QuerySet[AuditEvent] | None:
    if filters.ref or (filters.action and filters.action in RECORD_ACTIONS):
        return None  # configuration events are about no record
    events = AuditEvent.objects.filter(_time_bounds(filters))
    if filters.action:
        events = events.filter(action=filters.action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if filters.branch:
        batches = UploadBatch.objects.filter(branch=filters.branch).annotate(
            key=Cast("pk", output_field=CharField())
        )
        events = events.filter(
            Q(object_type="Branch", object_id=str(filters.branch.pk))
            | Q(object_type="UploadBatch", object_id__in=batches.values("key"))
        )
    return events


def _show(value: Any, name: str = "") -> str:
    value = mask_value(name, value) if name else value
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) or "—"
    return redact(str(value)) if value not in ("", None) else "—"


# Only these columns are read: never the record's (encrypted) customer data, and no model instances, so a
# long CSV export neither decrypts nor builds an object per row.
RECORD_COLUMNS = (
    "pk",
    "created_at",
    "action",
    "from_status",
    "to_status",
    "reason",
    "changed_fields",
    "record_id",
    "actor__username",
    "record__kyc_ref_no",
    "record__branch__code",
)
CONFIG_COLUMNS = ("pk", "created_at", "action", "object_type", "object_id", "detail", "actor__username")


def _record_row(event: dict[str, Any]) -> AuditRow:
    changes: list[str] = []
    for entry in event["changed_fields"] or []:
        if isinstance(entry, dict):  # {"field", "old", "new"}, PII masked when stored; masked again here
            name = str(entry.get("field", ""))
            label = record_selectors.field_label(name)  # the form's own words, as on the record page
            changes.append(f"{label}: {_show(entry.get('old'), name)} → {_show(entry.get('new'), name)}")
        else:
            changes.append(str(entry))
    return AuditRow(
        source=RECORD,
        pk=event["pk"],
        created_at=event["created_at"],
        actor=event["actor__username"] or "system",
        action=event["action"],
        action_label=RECORD_ACTIONS.get(event["action"], event["action"]),
        object_label=f"Record {event['record__kyc_ref_no']}",
        record_id=event["record_id"],
        branch=event["record__branch__code"],
        from_status=STATUS_WORDS.get(event["from_status"], event["from_status"]),
        to_status=STATUS_WORDS.get(event["to_status"], event["to_status"]),
        changes=changes,
        reason=redact(event["reason"]),
    )


# What a configuration event is about, in the words of the pages (never a model's class name).
OBJECT_WORDS = {
    "Institution": "Institution",
    "Branch": "Branch",
    "User": "User",
    "UploadBatch": "Batch",
    "ImportJob": "Import",
    "PinCode": "PIN master",
    "KycRecord": "Record",
    **{model.__name__: capfirst(str(model._meta.verbose_name)) for model in CODE_LIST_MODELS},
}


def _object_label(object_type: str, object_id: str, detail: dict[str, Any]) -> str:
    words = OBJECT_WORDS.get(object_type) or capfirst(
        re.sub(r"(?<=[a-z])(?=[A-Z])", " ", object_type).lower()
    )
    if object_type == "KycRecord":
        refs = detail.get("kyc_ref_nos")
        ref = detail.get("kyc_ref_no") or (refs[0] if isinstance(refs, list) and len(refs) == 1 else "")
        if ref:
            return f"Record {ref}"
        if isinstance(refs, list):
            return f"{len(refs)} records"
        return "Records"
    if object_type == "PinCode":
        return words
    name = detail.get("username") or detail.get("code") or ("" if object_type == "Institution" else object_id)
    return f"{words} {name}".strip()


def audit_action_label(action: str) -> str:
    """A configuration or record action in words: 'user_created' -> 'User created'."""
    return CONFIG_ACTIONS.get(action) or RECORD_ACTIONS.get(action) or action.replace("_", " ").capitalize()


# The configuration events' detail keys in the pages' words (Institution fields use their form labels).
DETAIL_WORDS = {
    "role": "Role",
    "branches": "Branches",
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "is_active": "Active",
    "password_set": "Password set",
    "devices_removed": "Authenticators removed",
    "token_replaced": "KwikID token replaced",
    "change": "Change number",
    "proposed_by": "Proposed by",
    "without_second_admin": "Applied without a second administrator",
    "active_admins": "Active administrators",
    "kyc_ref_nos": "KYC reference numbers",
    "sort_order": "Sort order",
    "pin_master_name": "Name in the PIN master",
}


def _detail_word(object_type: str, key: str) -> str:
    if key in DETAIL_WORDS:
        return DETAIL_WORDS[key]
    if object_type == "Institution":
        try:
            model_field = Institution._meta.get_field(key)
        except FieldDoesNotExist:
            model_field = None
        if model_field is not None and hasattr(model_field, "verbose_name"):
            return capfirst(str(model_field.verbose_name))
    return capfirst(key.replace("_", " "))


def _config_value(value: Any, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "role" and value in Role.values:
        return str(Role(value).label)
    if key == "size" and isinstance(value, int):
        return f"{value:,} bytes"
    return _show(value)


def _config_row(event: dict[str, Any]) -> AuditRow:
    detail = event["detail"] if isinstance(event["detail"], dict) else {}
    kind = event["object_type"]
    changes = [
        f"{_detail_word(kind, key)}: {_config_value(old, key)} → {_config_value(new, key)}"
        for key, (old, new) in (detail.get("changes") or {}).items()
        if isinstance(detail.get("changes"), dict)
    ]
    changes += [
        f"{_detail_word(kind, key)}: {_config_value(value, key)}"
        for key, value in detail.items()
        # "fields" only repeats the names in "changes"; "list" is said by the About column.
        if key not in ("changes", "reason", "username", "code", "list", "fields")
    ]
    return AuditRow(
        source=CONFIG,
        pk=event["pk"],
        created_at=event["created_at"],
        actor=event["actor__username"] or "system",
        action=event["action"],
        action_label=audit_action_label(event["action"]),
        object_label=_object_label(event["object_type"], event["object_id"], detail),
        changes=changes,
        reason=redact(str(detail.get("reason", ""))),
    )


def _actor_id(filters: AuditFilters) -> int | None:
    if not filters.actor:
        return None
    found = User.objects.filter(username=filters.actor).values_list("pk", flat=True).first()
    return found if found is not None else -1  # an unknown name matches nothing


def audit_page(
    user: User,
    filters: AuditFilters,
    *,
    after: tuple[datetime, str, int] | None = None,
    size: int = PAGE_SIZE,
) -> tuple[list[AuditRow], AuditRow | None]:
    """One page of the merged log, newest first, starting after ``after``; and the row to continue after
    (None on the last page). At most two queries of ``size + 1`` rows each: no COUNT, no OFFSET."""
    actor_id = _actor_id(filters)
    streams: list[list[AuditRow]] = []
    records = _record_events(user, filters, actor_id)
    if records is not None:
        rows = records.filter(_before(after, RECORD)).order_by("-created_at", "-pk").values(*RECORD_COLUMNS)
        rows = rows[: size + 1]
        streams.append([_record_row(e) for e in rows])
    config = _config_events(filters, actor_id)
    if config is not None:
        rows_c = config.filter(_before(after, CONFIG)).order_by("-created_at", "-pk").values(*CONFIG_COLUMNS)
        rows_c = rows_c[: size + 1]
        streams.append([_config_row(e) for e in rows_c])
    merged = list(heapq.merge(*streams, key=lambda row: row.key, reverse=True))
    page = merged[:size]
    return page, (page[-1] if len(merged) > size else None)


def audit_rows(user: User, filters: AuditFilters, *, chunk: int = 1000) -> Iterator[AuditRow]:
    """Every row of the filtered log, newest first, read a chunk at a time (for the CSV export)."""
    after = None
    while True:
        page, last = audit_page(user, filters, after=after, size=chunk)
        yield from page
        if last is None:
            return
        after = last.key


def audit_actions() -> list[tuple[str, str]]:
    return sorted({**RECORD_ACTIONS, **CONFIG_ACTIONS}.items(), key=lambda kv: kv[1])
