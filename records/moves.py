"""Status moves made by the workers: the upload worker's (batched, uploaded, rejected by KwikID, requeued)
and the registry check's (registered, registered before upload). Set-based (one conditional UPDATE and one
INSERT of audit events per chunk), each move checked against ALLOWED_TRANSITIONS like a single record's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from ckycportal.crypto import keyed_hash
from ckycportal.db import insert_each, update_each
from institutions.models import User

from .models import ALLOWED_TRANSITIONS, KycRecord, RecordEvent, Status
from .services import _UNFROZEN, TransitionNotAllowed

# Ids per statement: well below PostgreSQL's 65,535 and SQLite's 32,766 bound parameters.
_TRANSITION_CHUNK = 5000


def _transition_many(
    record_ids: Iterable[int],
    from_status: str,
    to_status: str,
    *,
    action: str,
    actor: User | None = None,
    reasons: Mapping[int, str] | None = None,
    **updates: Any,
) -> list[int]:
    """Move many records at once, with one audit event each; returns the ids that moved.

    Set-based: per distinct reason, one conditional ``UPDATE … RETURNING id`` (it skips any record no
    longer in ``from_status``; a row another transaction is moving is waited for and re-checked) and one
    ``INSERT … SELECT`` writing the audit events of exactly the rows it moved; on PostgreSQL the two are one
    statement. PostgreSQL, and SQLite from 3.35 (``make run``). Call inside a transaction.
    """
    if to_status not in ALLOWED_TRANSITIONS[from_status]:
        raise TransitionNotAllowed(f"Records cannot move from {from_status} to {to_status}.")
    reasons = reasons or {}
    by_reason: dict[str, list[int]] = {}
    for pk in dict.fromkeys(record_ids):
        by_reason.setdefault(reasons.get(pk, ""), []).append(pk)
    now = timezone.now()
    moved: list[int] = []
    for reason, ids in by_reason.items():
        for start in range(0, len(ids), _TRANSITION_CHUNK):
            chunk = ids[start : start + _TRANSITION_CHUNK]
            moved += _move_rows(chunk, from_status, to_status, now, updates, action, actor, reason)
    return moved


def _move_rows(
    ids: list[int],
    from_status: str,
    to_status: str,
    now: Any,
    updates: Mapping[str, Any],
    action: str,
    actor: User | None,
    reason: str,
) -> list[int]:
    """_transition_many's statements for one group of records that share a reason: on PostgreSQL one (the
    UPDATE in a WITH clause, the INSERT of events from its rows), elsewhere the UPDATE then the INSERT."""
    quote = connection.ops.quote_name
    record_meta, event_meta = KycRecord._meta, RecordEvent._meta
    table, pk = quote(record_meta.db_table), quote(str(record_meta.pk.column))

    def prepared(meta: Any, values: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        """Column names and database values of model fields (identifiers from the model, values bound)."""
        columns, params = [], []
        for name, value in values.items():
            field = meta.get_field(name)
            columns.append(quote(field.column))
            params.append(field.get_db_prep_save(getattr(value, "pk", value), connection))
        return columns, params

    def among(values: list[int]) -> tuple[str, list[Any]]:
        """``pk`` among these ids: one array parameter on PostgreSQL (the statement's text stays the same,
        so psycopg parses it once), a list of parameters elsewhere."""
        if connection.vendor == "postgresql":
            return f"{pk} = ANY(%s)", [values]
        return f"{pk} IN ({', '.join(['%s'] * len(values))})", values

    columns, params = prepared(record_meta, {"status": to_status, "updated_at": now, **updates})
    assignments = ", ".join(f"{column} = %s" for column in columns)
    where, where_params = among(ids)
    event_columns, event_params = prepared(
        event_meta,
        {
            "record": None,  # filled with the moved row's id
            "actor": actor,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "reason": reason,
            "changed_fields": [],
            "created_at": now,
        },
    )
    constants = ", ".join(["%s"] * (len(event_columns) - 1))
    events = f"INSERT INTO {quote(event_meta.db_table)} ({', '.join(event_columns)}) "
    event_record = event_columns[0]  # the event's record_id
    # The rows are found by primary key whatever the planner's statistics say: written as ``status || ''``,
    # the status check cannot use a status index. With statistics from before a large run, PostgreSQL can
    # believe a status rare and walk its whole index entry for each update.
    # Identifiers come from the models' meta and every value is a bound parameter (hence the noqa).
    update = (
        f"UPDATE {table} SET {assignments} WHERE {where} AND {quote('status')} || '' = %s "  # noqa: S608
        f"RETURNING {pk}"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the events are written from the UPDATE's own RETURNING rows, so the moved
            # records are neither sent back and forth nor looked up again by primary key.
            cursor.execute(
                f"WITH moved AS ({update}) {events}"  # noqa: S608
                f"SELECT {pk}, {constants} FROM moved RETURNING {event_record}",
                [*params, *where_params, from_status, *event_params[1:]],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(update, [*params, *where_params, from_status])
        moved = [row[0] for row in cursor.fetchall()]
        if not moved:
            return []
        where, where_params = among(moved)
        cursor.execute(
            f"{events}SELECT {pk}, {constants} FROM {table} WHERE {where}",  # noqa: S608
            [*event_params[1:], *where_params],
        )
    return moved


def records_mark_batched(*, record_ids: Iterable[int]) -> list[int]:
    """Approved records join an upload batch. Call inside the transaction that creates the batch."""
    return _transition_many(
        record_ids, Status.APPROVED, Status.BATCHED, action=RecordEvent.Action.BATCHED, reasons=None
    )


def records_mark_uploaded(*, record_ids: Iterable[int], message: str, actor: User | None = None) -> list[int]:
    """KwikID accepted these records (``actor``: who confirmed it when KwikID's answer was lost)."""
    ids = list(record_ids)
    return _transition_many(
        ids,
        Status.BATCHED,
        Status.UPLOADED,
        actor=actor,
        action=RecordEvent.Action.UPLOADED,
        reasons=dict.fromkeys(ids, message),
        upload_message=message,
        uploaded_at=timezone.now(),
    )


def records_mark_rejected(*, reasons: Mapping[int, str]) -> list[int]:
    """KwikID rejected these records; each goes back to its maker with KwikID's reason."""
    moved: list[int] = []
    # One update per distinct reason keeps each record's own message on the row.
    by_reason: dict[str, list[int]] = {}
    for pk, reason in reasons.items():
        by_reason.setdefault(reason, []).append(pk)
    for reason, ids in by_reason.items():
        moved += _transition_many(
            ids,
            Status.BATCHED,
            Status.REJECTED,
            action=RecordEvent.Action.REJECTED,
            reasons=dict.fromkeys(ids, reason),
            upload_message=reason,
            **_UNFROZEN,
        )
    return moved


def records_requeue(*, record_ids: Iterable[int], reason: str) -> list[int]:
    """Records whose batch never reached KwikID go back to the upload queue."""
    ids = list(record_ids)
    return _transition_many(
        ids,
        Status.BATCHED,
        Status.APPROVED,
        action=RecordEvent.Action.REQUEUED,
        reasons=dict.fromkeys(ids, reason),
    )


_NOTE_LENGTH = 200  # KycRecord.registration_note's max_length


def registration_status(*, uploaded_at: datetime | None, registry_kyc_date: date | None) -> Status:
    """Where a found KIN takes an uploaded record: registered, or registered before upload when the
    registry's KYC date is earlier than the (local) day KwikID accepted the record. A KIN without a KYC
    date cannot be placed before the upload, so it counts as registered."""
    if registry_kyc_date is None or uploaded_at is None:
        return Status.REGISTERED
    if registry_kyc_date < timezone.localdate(uploaded_at):
        return Status.PREEXISTING
    return Status.REGISTERED


@dataclass(frozen=True)
class FoundKin:
    """The registry holds ``record_id`` under ``kin``; ``note`` says how it was found (no personal data)."""

    record_id: int
    kin: str
    registry_kyc_date: date | None
    note: str


def records_mark_registered_many(*, found: Sequence[FoundKin], actor: User | None = None) -> dict[int, str]:
    """The registry holds these uploaded records: each becomes registered (or registered before upload, see
    ``registration_status``) with its audit event, the KIN encrypted and its keyed hash, the registry's KYC
    date, when it was found and its note (which becomes the event's reason). Records no longer uploaded are
    left alone. Returns {record id: new status} of those moved. Call inside a transaction.

    One locking read, then the rows' updates sent together (``ckycportal.db.update_each``: each row's
    values differ) and one INSERT of their events.
    """
    kins: dict[int, FoundKin] = {}
    for item in found:
        kin = "".join(item.kin.split())
        if not (len(kin) == 14 and kin.isdigit()):
            raise ValueError("A KIN has exactly 14 digits.")
        kins[item.record_id] = FoundKin(item.record_id, kin, item.registry_kyc_date, item.note[:_NOTE_LENGTH])
    if not kins:
        return {}
    for to_status in (Status.REGISTERED, Status.PREEXISTING):
        if to_status not in ALLOWED_TRANSITIONS[Status.UPLOADED]:
            raise TransitionNotAllowed(f"Records cannot move from uploaded to {to_status}.")
    # Locked: nothing else moves these rows until the transaction ends, so each is moved and logged once.
    # Found by primary key whatever the statistics say, the status checked on the locked (latest) rows: a
    # status condition in the query let PostgreSQL walk every waiting record's index entry instead.
    records = [
        record
        for record in KycRecord.objects.select_for_update()
        .filter(pk__in=list(kins))
        .only("pk", "uploaded_at", "status")
        .order_by("pk")
        if record.status == Status.UPLOADED
    ]
    now = timezone.now()
    moved: dict[int, str] = {}
    rows: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    actor_id = actor.pk if actor is not None else None
    for record in records:
        item = kins[record.pk]
        to_status = registration_status(
            uploaded_at=record.uploaded_at, registry_kyc_date=item.registry_kyc_date
        )
        moved[record.pk] = to_status
        kin_hash = keyed_hash(item.kin)
        rows.append((record.pk, to_status, item.kin, kin_hash, item.registry_kyc_date, now, item.note, now))
        action = (
            RecordEvent.Action.PREEXISTING
            if to_status == Status.PREEXISTING
            else RecordEvent.Action.REGISTERED
        )
        events.append((record.pk, actor_id, action, Status.UPLOADED, to_status, item.note, now))
    update_each(KycRecord, _REGISTERED_FIELDS, rows)
    insert_each(RecordEvent, _EVENT_FIELDS, events)
    return moved


_EVENT_FIELDS = ("record", "actor", "action", "from_status", "to_status", "reason", "created_at")
_REGISTERED_FIELDS = (
    "status",
    "ckyc_number",
    "ckyc_number_hash",
    "registry_kyc_date",
    "registered_at",
    "registration_note",
    "updated_at",
)


def records_mark_registered(
    *, record_id: int, kin: str, registry_kyc_date: date | None, note: str, actor: User | None = None
) -> str | None:
    """One record of ``records_mark_registered_many``: its new status, or None when it was no longer
    uploaded (nothing written)."""
    moved = records_mark_registered_many(
        found=[FoundKin(record_id, kin, registry_kyc_date, note)], actor=actor
    )
    return moved.get(record_id)
