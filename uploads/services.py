"""Upload batches: assemble approved records, send each batch to KwikID once, and keep every outcome.

PostgreSQL holds the truth and the broker is only a doorbell: every step claims its rows with a conditional
update (or ``select_for_update(skip_locked=True)``), so a repeated or lost Celery message can delay an upload
but never send a record twice. The HTTP call happens outside any transaction and any row lock.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Now
from django.utils import timezone

from ckycportal.db import atomic_async_commit
from ckycportal.errors import ActionRefused, PortalError
from ckycportal.logging import redact
from codelists.selectors import code_book
from institutions.models import AuditEvent, Branch, Institution, Role, User
from kwikid.client import (
    KwikIDAuthError,
    KwikIDClient,
    KwikIDError,
    KwikIDRateLimitedError,
    KwikIDRejectedError,
    KwikIDTransientError,
    KwikIDUnknownOutcomeError,
    UploadResult,
    process_session,
)
from kwikid.fields import FIELD_LABELS
from kwikid.payload import (
    PAYLOAD_FIELDS,
    Header,
    encode_records,
    encode_request,
    payload_to_record,
    record_to_payload,
    with_guide_fields,
    with_guide_fields_encoded,
)
from kwikid.rejections import map_rejection
from kwikid.schema import record_problem
from records import moves as record_moves
from records import services as record_services
from records.models import KycRecord, Status
from records.validation import blocking_problems, validate_record

from .models import (
    BATCH_TRANSITIONS,
    CANCELLABLE,
    FINAL_BATCH_STATUSES,
    BatchItem,
    BatchStatus,
    UploadAttempt,
    UploadBatch,
)

logger = logging.getLogger(__name__)

BODY_LIMIT = 4000
RETRY_BASE_SECONDS = 5
# Kept far below Redis's visibility timeout: longer waits are held in the database and swept (celery#2599).
RETRY_CAP_SECONDS = 300

Enqueue = Callable[[int, float], None]

# How the reason of a record the portal itself sends back before upload begins (KwikID never saw it): the
# CKYC rules of the day, with today's code lists and severities, or KwikID's schema refuse it.
RULES_REFUSAL = "It no longer passes the CKYC rules: "
SCHEMA_REFUSAL = "KwikID would refuse it: "


class Sent(NamedTuple):
    """A record in the body being sent: its id and its kyc_ref_no (what KwikID's detail may name)."""

    pk: int
    kyc_ref_no: str


@dataclass(frozen=True)
class SendOutcome:
    batch_id: int
    status: str
    retry_in: float | None = None


def _truncate(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _masked(value: Any) -> Any:
    """KwikID's reply as the portal keeps and shows it: identifiers masked by the log filter's rule (a PAN, a
    KIN, an Aadhaar or mobile number), in every string of it, since a real KwikID may quote what was sent."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def batch_assemble(
    *, institution_id: int | None = None, actor: User | None = None, limit: int | None = None
) -> list[int]:
    """Group approved records into READY batches, one per institution and branch, never above the maximum.

    Branches take turns, one batch each, the branch whose oldest approved record has waited longest first,
    so no branch's backlog holds up another's deadline. With ``limit`` it stops after that many batches, and
    once it has made half of them it queues the next run, behind the sends queued so far: one worker sends
    from the start however large the backlog, several keep assembling ahead of their sends, and no run
    outlives the task time limit. Safe to run twice and concurrently: each chunk of records is claimed with
    skip_locked and a conditional status update, so two assemblers never put a record in two batches.
    Returns the new batch ids.
    """
    institutions = Institution.objects.filter(sending_paused_at__isnull=True).exclude(api_token="")
    if institution_id is not None:
        institutions = institutions.filter(pk=institution_id)
    waiting = KycRecord.objects.filter(branch=OuterRef("pk"), status=Status.APPROVED)
    # One probe per branch in the approved queue's partial index, however many records wait.
    branches = list(
        Branch.objects.filter(institution__in=institutions)
        .filter(Exists(waiting))
        .annotate(waiting_since=Subquery(waiting.order_by("reviewed_at", "pk").values("reviewed_at")[:1]))
        .select_related("institution")
        .order_by(F("waiting_since").asc(nulls_last=True), "pk")
    )
    created: list[int] = []
    # Where the next run is queued: half-way, so that a worker is free to start it while this one finishes
    # (a run queued at the end waits behind every send of this one, and the senders then idle).
    next_run_after = None if limit is None else max(1, limit // 2)
    while branches and (limit is None or len(created) < limit):
        for branch in list(branches):
            if limit is not None and len(created) >= limit:
                break
            batch_id = _assemble_one(branch.institution, branch, actor)
            if batch_id is None:
                branches.remove(branch)
                continue
            created.append(batch_id)
            if len(created) == next_run_after:
                transaction.on_commit(_enqueue_assemble)  # at once outside a transaction
    return created


def _assemble_one(institution: Institution, branch: Branch, actor: User | None) -> int | None:
    # Its commit need not wait for the disk: a batch lost in a database crash leaves its records approved
    # (its send finds no batch and stops), and the send's attempt commits normally before the POST, which
    # makes this batch durable first.
    with atomic_async_commit():
        claimed = list(
            KycRecord.objects.select_for_update(skip_locked=True)
            .filter(branch=branch, status=Status.APPROVED)
            .order_by("reviewed_at", "pk")
            .values_list("pk", "kyc_ref_no")[: institution.max_records_per_request]
        )
        if not claimed:
            return None
        moved = set(record_moves.records_mark_batched(record_ids=[pk for pk, _ in claimed]))
        ordered = [(pk, ref) for pk, ref in claimed if pk in moved]
        if not ordered:
            return None
        batch = UploadBatch.objects.create(
            institution=institution,
            branch=branch,
            record_count=len(ordered),
            created_by=actor,
            request_summary={
                "fi_code": institution.fi_code,
                "version": institution.api_version,
                "region_code": institution.region_code,
                "username": institution.cersai_username,
                "branch_code": branch.code,
                "record_count": len(ordered),
                "kyc_ref_nos": [ref for _, ref in ordered],
            },
        )
        _insert_items(batch.pk, [pk for pk, _ in ordered])
        batch_id = batch.pk
        transaction.on_commit(lambda: _enqueue_send(batch_id, 0))
    return batch_id


# Rows per INSERT where there are no arrays: 5 parameters each, well under SQLite's 32,766.
_ITEM_ROWS_PER_INSERT = 1000


def _insert_items(batch_id: int, record_ids: list[int]) -> None:
    """The batch's items in request order in one statement, without a model instance per record."""
    meta = BatchItem._meta
    quote = connection.ops.quote_name
    column = {field.name: str(field.column) for field in meta.concrete_fields}
    columns = ", ".join(quote(column[name]) for name in ("batch", "record", "position", "outcome", "message"))
    pending = BatchItem.Outcome.PENDING.value
    # Identifiers come from the model's meta and every value is a bound parameter (hence the noqa).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter: the statement's text is the same for every batch (parsed once).
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
                "SELECT %s, t.id, t.n - 1, %s, '' FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(id, n)",
                [batch_id, pending, record_ids],
            )
            return
        for start in range(0, len(record_ids), _ITEM_ROWS_PER_INSERT):
            chunk = record_ids[start : start + _ITEM_ROWS_PER_INSERT]
            params: list[Any] = []
            for position, pk in enumerate(chunk, start):
                params += [batch_id, pk, position, pending, ""]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values}", params)  # noqa: S608


def _enqueue_send(batch_id: int, countdown: float) -> None:
    # Imported here: tasks import services, and a missed doorbell is recovered by the sweep anyway.
    from .tasks import batch_send

    try:
        batch_send.apply_async(args=[batch_id], countdown=max(0.0, countdown))
    except Exception:
        logger.warning(
            "Could not enqueue batch %s; the periodic sweep will send it.", batch_id, exc_info=True
        )


def _claim(batch_id: int) -> tuple[UploadBatch, str] | None:
    """Take the batch for sending: READY or RETRY_WAIT that is due, or SENDING whose lease has expired.
    Returns it with the stamp its frozen records' checks must match (records.services.check_stamp)."""
    # The database's clock, not this worker's: workers on hosts whose clocks differ agree on expiry.
    now = Now()
    lease = now + timedelta(seconds=settings.UPLOAD_LEASE_SECONDS)
    claimable = Q(status__in=[BatchStatus.READY, BatchStatus.RETRY_WAIT]) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    expired = Q(status=BatchStatus.SENDING, lease_expires_at__lt=now)
    # Made durable by the attempt's commit before the POST; lost before it, the batch is only claimed again.
    with atomic_async_commit():
        updated = UploadBatch.objects.filter(Q(pk=batch_id) & (claimable | expired)).update(
            status=BatchStatus.SENDING, lease_expires_at=lease, attempt_count=F("attempt_count") + 1
        )
    if updated != 1:
        return None  # another worker got there first, or the batch is finished or not yet due
    # The code book's token comes with the batch: one read, not two.
    batch = (
        UploadBatch.objects.select_related("institution", "branch")
        .annotate(code_book_token=record_services.code_book_token())
        .get(pk=batch_id)
    )
    return batch, record_services.stamp_for(batch.code_book_token, timezone.localdate())  # type: ignore[attr-defined]


def _failing_ckyc_rules(rows: list[dict[str, Any]], *, warnings_block: bool) -> dict[int, str]:
    """The records (by id) that no longer pass the CKYC rules, each with what to fix, in people's words: the
    rules of today (a rule that became an error since approval refuses the record), each problem named by its
    field's label."""
    if not rows:
        return {}
    book, today = code_book(), timezone.localdate()
    refused: dict[int, str] = {}
    for row in rows:
        problems = blocking_problems(
            validate_record(row, complete=True, today=today, codes=book), warnings_block=warnings_block
        )
        if problems:
            listed = "; ".join(f"{FIELD_LABELS.get(p.field, p.field)}: {p.message}" for p in problems)
            refused[row["pk"]] = f"{RULES_REFUSAL}{listed}"
    return refused


def _batch_records(
    batch: UploadBatch, *, stamp: str, warnings_block: bool, guide_fields: bool = False
) -> tuple[list[Sent], list[bytes], dict[int, str]]:
    """The batch's pending records in request order, each as the bytes of its record object, and those
    refused (by id, with what to fix) because they no longer pass the CKYC rules or KwikID's schema.

    A record approved with a frozen payload is sent as frozen: one value decrypted, no serialising. It is
    checked again only when the code book, the rules (``RULES_VERSION``) or the day changed since it passed
    (its ``frozen_checked`` differs from ``stamp``, read with the claim), and then from the frozen payload
    itself. A record approved before payloads were frozen is read field by field and checked, as it always
    was.

    With ``guide_fields`` (the institution's send_guide_extra_fields, read at send time so that a change
    applies to records already queued) each record object gains the guide's two members, frozen or not,
    and is checked against the guide's schema.
    """
    # Two index lookups whatever the planner's statistics say: the item ids by (batch, position), then the
    # records by primary key (a join could pick a scan of the record table while the statistics are stale).
    ids = list(
        batch.items.filter(outcome=BatchItem.Outcome.PENDING)
        .order_by("position")
        .values_list("record_id", flat=True)
    )
    rows = {
        pk: (ref, frozen, checked)
        for pk, ref, frozen, checked in KycRecord.objects.filter(pk__in=ids)
        .order_by()
        .values_list("pk", "kyc_ref_no", "frozen_payload", "frozen_checked")
    }
    to_check: dict[int, dict[str, Any]] = {}  # record data to validate, by id
    payloads: dict[int, dict[str, Any]] = {}  # record objects not frozen or not yet checked
    for pk in ids:
        _ref, frozen, checked = rows[pk]
        if frozen and checked and checked == stamp:
            continue
        if frozen:
            payloads[pk] = json.loads(frozen)
            to_check[pk] = payload_to_record(payloads[pk])
    unfrozen = [pk for pk in ids if not rows[pk][1]]
    if unfrozen:
        for row in KycRecord.objects.filter(pk__in=unfrozen).values("pk", *PAYLOAD_FIELDS):
            to_check[row["pk"]] = row
            payloads[row["pk"]] = record_to_payload(row)
    # The CKYC rules once more, with today's code lists, PIN master and rules: a list or a rule's severity
    # changed since approval (RULES_VERSION is part of the stamp).
    refused = _failing_ckyc_rules(
        [to_check[pk] | {"pk": pk} for pk in ids if pk in to_check], warnings_block=warnings_block
    )
    # A record KwikID's schema would refuse never leaves.
    refused |= {
        pk: f"{SCHEMA_REFUSAL}{problem}"
        for pk, payload in payloads.items()
        if pk not in refused
        and (
            problem := record_problem(
                with_guide_fields(payload) if guide_fields else payload, guide_fields=guide_fields
            )
        )
    }
    records: list[Sent] = []
    encoded: list[bytes] = []
    for pk in ids:
        if pk in refused:
            continue
        ref, frozen, _checked = rows[pk]
        records.append(Sent(pk, ref))
        # Each record serialised once (compact, as frozen): to size the body, then joined into it.
        body = frozen.encode() if frozen else encode_records([payloads[pk]])[0]
        encoded.append(with_guide_fields_encoded(body) if guide_fields else body)
    return records, encoded, refused


def batch_send(*, batch_id: int, enqueue: Enqueue | None = None) -> SendOutcome:
    """Send one batch to KwikID and record the outcome. Safe to run twice: the claim lets only one through.

    A batch whose earlier attempt began but never recorded an answer (its worker died mid-call) is marked
    UNKNOWN instead of being sent again: KwikID may have accepted it.
    """
    enqueue = enqueue or _enqueue_send
    claimed = _claim(batch_id)
    if claimed is None:
        current = UploadBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first()
        return SendOutcome(batch_id, current or "missing")
    batch, stamp = claimed

    # Only a batch claimed before can hold an attempt that began and never answered: attempt numbers run
    # up to the claims made, so the first claim skips the look.
    unfinished = None
    if batch.attempt_count > 1:
        unfinished = (
            batch.attempts.filter(duration_ms__isnull=True, error_class="").order_by("-number").first()
        )
    if unfinished is not None:
        with transaction.atomic():
            unfinished.error_class = "WorkerLost"
            unfinished.error_message = "The worker stopped during this attempt; KwikID may have received it."
            unfinished.save(update_fields=["error_class", "error_message"])
            _finish_unknown(batch, "The worker stopped while sending; KwikID may have accepted this batch.")
        return SendOutcome(batch_id, BatchStatus.UNKNOWN)

    institution = batch.institution
    if institution.sending_paused_at is not None or not institution.api_token:
        # Never a request with a refused or empty token: wait, paused, until an admin replaces it.
        reason = institution.sending_paused_reason or "No KwikID bearer token is configured."
        _set_batch(batch, BatchStatus.PAUSED, attempt_count=F("attempt_count") - 1, error=reason)
        return SendOutcome(batch_id, BatchStatus.PAUSED)

    records, encoded, refused = _batch_records(
        batch,
        stamp=stamp,
        warnings_block=institution.warnings_block,
        guide_fields=institution.send_guide_extra_fields,
    )
    header = Header(
        fi_code=institution.fi_code,
        version=institution.api_version,
        region_code=institution.region_code,
        username=institution.cersai_username,
        branch_code=batch.branch.code,
    )
    if refused:
        # A record that no longer passes never leaves: it goes back to its maker, the rest are sent.
        with transaction.atomic():
            for pk, reason in refused.items():
                batch.items.filter(record_id=pk).update(outcome=BatchItem.Outcome.REJECTED, message=reason)
            record_moves.records_mark_rejected(reasons=refused)
            if not records:
                _set_batch(
                    batch,
                    BatchStatus.REJECTED,
                    attempt_count=F("attempt_count") - 1,
                    response_message="No record passed the CKYC rules and KwikID's schema; nothing was sent.",
                )
                return SendOutcome(batch_id, BatchStatus.REJECTED)
    # Above the institution's byte limit: send what fits, move the rest to a new batch of their own.
    cut = max(_records_that_fit(header, encoded, institution.max_request_bytes), 1)
    if cut < len(records):
        with transaction.atomic():
            _split_off(batch, [r.pk for r in records[cut:]])
        records, encoded = records[:cut], encoded[:cut]
    body = encode_request(header, encoded)
    del encoded
    attempt = UploadAttempt.objects.create(
        batch=batch, number=batch.attempt_count, started_at=timezone.now()
    )  # committed before the call: if this worker dies mid-call, the reclaim sees it (see above)
    # This process's keep-alive session: one connection for batch after batch.
    client = KwikIDClient(
        base_url=institution.api_base_url,
        token=institution.api_token,
        connect_timeout=settings.KWIKID_CONNECT_TIMEOUT,
        read_timeout=settings.KWIKID_READ_TIMEOUT,
        session=process_session(),
    )
    started = time.monotonic()
    try:
        result: UploadResult | None = client.upload(body)
        error: KwikIDError | None = None
    except KwikIDError as exc:
        result, error = None, exc
    elapsed_ms = int((time.monotonic() - started) * 1000)

    try:
        with transaction.atomic():
            return _record_outcome(batch, attempt, records, result, error, elapsed_ms, enqueue)
    except BatchConflict:
        # The answer came after the lease ran out and another worker settled the batch (as UNKNOWN):
        # its decision stands; this late answer is kept only in the worker's log line.
        logger.warning("Batch %s was settled by another worker while this one waited for KwikID.", batch_id)
        current = UploadBatch.objects.filter(pk=batch_id).values_list("status", flat=True).first()
        return SendOutcome(batch_id, current or "missing")


def _record_outcome(
    batch: UploadBatch,
    attempt: UploadAttempt,
    records: list[Sent],
    result: UploadResult | None,
    error: KwikIDError | None,
    elapsed_ms: int,
    enqueue: Enqueue,
) -> SendOutcome:
    if result is not None:
        return _on_accepted(batch, attempt, result, elapsed_ms, records)
    assert error is not None
    _save_attempt(attempt, error, elapsed_ms)
    if isinstance(error, KwikIDAuthError):
        return _on_auth_error(batch, error)
    if isinstance(error, KwikIDRejectedError):
        return _on_rejected(batch, error, records)
    if isinstance(error, KwikIDUnknownOutcomeError):
        _finish_unknown(batch, f"{type(error).__name__}: {error}")
        return SendOutcome(batch.pk, BatchStatus.UNKNOWN)
    if isinstance(error, KwikIDTransientError):
        return _on_transient(batch, error, enqueue)
    raise error


def _records_that_fit(header: Header, encoded: list[bytes], limit: int) -> int:
    """How many leading records fit in ``limit`` bytes of request body (each also counted with a comma)."""
    total, count = len(encode_request(header, [])), 0
    for record in encoded:
        total += len(record) + 1
        if total > limit:
            break
        count += 1
    return count


def _split_off(batch: UploadBatch, record_ids: list[int]) -> UploadBatch:
    """Move these records of a batch being sent into a new READY batch, queued after commit."""
    refs = dict(KycRecord.objects.filter(pk__in=record_ids).values_list("pk", "kyc_ref_no"))
    new = UploadBatch.objects.create(
        institution_id=batch.institution_id,
        branch_id=batch.branch_id,
        record_count=len(record_ids),
        request_summary={
            **batch.request_summary,
            "record_count": len(record_ids),
            "kyc_ref_nos": [refs[pk] for pk in record_ids],
            "split_from": batch.pk,
        },
    )
    BatchItem.objects.filter(batch=batch, record_id__in=record_ids).delete()
    _insert_items(new.pk, record_ids)
    kept = [ref for ref in batch.request_summary.get("kyc_ref_nos", []) if ref not in set(refs.values())]
    UploadBatch.objects.filter(pk=batch.pk).update(
        record_count=len(kept),
        request_summary={**batch.request_summary, "record_count": len(kept), "kyc_ref_nos": kept},
    )
    new_id = new.pk
    transaction.on_commit(lambda: _enqueue_send(new_id, 0))
    return new


# What completing an attempt writes (its start, batch and number were written before the call).
_ATTEMPT_ANSWER = ("duration_ms", "status_code", "response_body", "error_class", "error_message")


def _save_attempt(attempt: UploadAttempt, error: KwikIDError, elapsed_ms: int) -> None:
    attempt.duration_ms = elapsed_ms
    attempt.status_code = error.status_code
    attempt.response_body = _truncate(redact(error.body or ""))
    attempt.error_class = type(error).__name__
    attempt.error_message = _truncate(str(error), 1000)
    attempt.save(update_fields=_ATTEMPT_ANSWER)


class BatchConflict(PortalError):
    """The batch is no longer in the state the action expected; nothing was changed."""


def _move_batch(
    batch: UploadBatch, status: str, *, expected: str = BatchStatus.SENDING, **fields: Any
) -> None:
    """The one place a batch's status changes: a conditional update from ``expected`` (BATCH_TRANSITIONS)."""
    if status not in BATCH_TRANSITIONS[expected]:
        raise BatchConflict(f"A batch that is {BatchStatus(expected).label.lower()} cannot become {status}.")
    if status in FINAL_BATCH_STATUSES:
        fields.setdefault("finished_at", timezone.now())
    updated = UploadBatch.objects.filter(pk=batch.pk, status=expected).update(
        status=status, lease_expires_at=None, **fields
    )
    if updated != 1:
        raise BatchConflict(f"Batch {batch.pk} changed meanwhile; reload it and try again.")


def _set_batch(batch: UploadBatch, status: str, **fields: Any) -> None:
    """Move the batch out of SENDING; only the worker holding the claim gets here."""
    _move_batch(batch, status, expected=BatchStatus.SENDING, **fields)


def _on_accepted(
    batch: UploadBatch, attempt: UploadAttempt, result: UploadResult, elapsed_ms: int, records: list[Sent]
) -> SendOutcome:
    """A 200: its records are accepted, except those its per-record results mark as failed, which go back
    to their maker with KwikID's reason (as a 400 naming them would). A plain answer accepts them all."""
    attempt.duration_ms = elapsed_ms
    attempt.status_code = result.status_code
    attempt.response_body = _truncate(redact(result.body))
    attempt.save(update_fields=_ATTEMPT_ANSWER)
    message = redact(result.message) or "Accepted for processing"
    failures = _masked(result.record_failures([r.kyc_ref_no for r in records]))
    refused = {r.pk: failures[r.kyc_ref_no] for r in records if r.kyc_ref_no in failures}
    # Every record failed: nothing of the batch was accepted, whatever the HTTP status said.
    status = BatchStatus.REJECTED if refused and len(refused) == len(records) else BatchStatus.ACCEPTED
    _set_batch(
        batch,
        status,
        response_status_code=result.status_code,
        response_message=redact(result.message),
        response_status=result.status,
        response_detail={"failed_records": failures} if refused else None,
        error="",
    )
    for pk, reason in refused.items():
        BatchItem.objects.filter(batch=batch, record_id=pk).update(
            outcome=BatchItem.Outcome.REJECTED, message=reason
        )
    record_moves.records_mark_rejected(reasons=refused)
    # The batch's pending items are the records sent, less those just rejected: no need to read them back.
    batch.items.filter(outcome=BatchItem.Outcome.PENDING).update(
        outcome=BatchItem.Outcome.ACCEPTED, message=message
    )
    record_moves.records_mark_uploaded(
        record_ids=[r.pk for r in records if r.pk not in refused], message=message
    )
    return SendOutcome(batch.pk, status)


def _on_rejected(batch: UploadBatch, error: KwikIDRejectedError, records: list[Sent]) -> SendOutcome:
    message = redact(error.message) or "KwikID rejected the batch"
    detail = _masked(error.detail)
    _set_batch(
        batch,
        BatchStatus.REJECTED,
        response_status_code=error.status_code,
        response_message=message,
        response_detail=detail if detail not in (None, "") else None,
        error="",
    )
    named = map_rejection(detail, [r.kyc_ref_no for r in records])
    reasons: dict[int, str] = {}
    requeue: list[int] = []
    for position, record in enumerate(records):
        if not named:
            reasons[record.pk] = message  # nothing names a record: the whole batch is rejected
        elif position in named:
            reasons[record.pk] = "; ".join(named[position])
        else:
            requeue.append(record.pk)
    for pk, reason in reasons.items():
        BatchItem.objects.filter(batch=batch, record_id=pk).update(
            outcome=BatchItem.Outcome.REJECTED, message=reason
        )
    if requeue:
        BatchItem.objects.filter(batch=batch, record_id__in=requeue).update(
            outcome=BatchItem.Outcome.REQUEUED,
            message="Not named by KwikID's rejection; sent again in a new batch.",
        )
    record_moves.records_mark_rejected(reasons=reasons)
    record_moves.records_requeue(
        record_ids=requeue, reason=f"Batch {batch.pk} was rejected for other records; this one is sent again."
    )
    if requeue:
        transaction.on_commit(_enqueue_assemble)  # the untouched records go out again now, not at the sweep
    return SendOutcome(batch.pk, BatchStatus.REJECTED)


def _on_auth_error(batch: UploadBatch, error: KwikIDAuthError) -> SendOutcome:
    """401: pause every send of the institution (banner, admins told); this batch waits for the new token."""
    reason = "KwikID refused the bearer token (HTTP 401). Replace the token to resume sending."
    if error.status_code is None:
        reason = "No KwikID bearer token is configured. Set one to start sending."
    paused = Institution.objects.filter(pk=batch.institution_id, sending_paused_at__isnull=True).update(
        sending_paused_at=timezone.now(), sending_paused_reason=reason
    )
    _set_batch(
        batch,
        BatchStatus.PAUSED,
        response_status_code=error.status_code,
        response_message=redact(error.message or ""),
        response_detail=_masked(error.detail) if error.detail not in (None, "") else None,
        error=reason,
    )
    if paused:
        institution_id = batch.institution_id
        transaction.on_commit(lambda: notify_admins_token_refused(institution_id))
    return SendOutcome(batch.pk, BatchStatus.PAUSED)


def notify_admins_token_refused(institution_id: int) -> None:
    """Mail every active admin that sending is paused (the banner on every page says it too)."""
    institution = Institution.objects.get(pk=institution_id)
    recipients = list(
        User.objects.filter(role=Role.ADMIN, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if recipients:
        send_mail(
            subject=f"CKYC Portal: uploads paused for {institution.name}",
            message=f"{institution.sending_paused_reason}\n\nReplace the token on the institution settings "
            "page; paused batches are then sent again by themselves.",
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )


def batches_resume(*, institution_id: int) -> list[int]:
    """After the token is replaced: every paused batch of the institution becomes ready and is sent."""
    resumed = []
    for batch in UploadBatch.objects.filter(institution_id=institution_id, status=BatchStatus.PAUSED):
        try:
            _move_batch(batch, BatchStatus.READY, expected=BatchStatus.PAUSED, next_attempt_at=None, error="")
        except BatchConflict:
            continue
        resumed.append(batch.pk)
    for batch_id in resumed:
        transaction.on_commit(functools.partial(_enqueue_send, batch_id, 0))
    return resumed


def _finish_unknown(batch: UploadBatch, reason: str) -> None:
    _set_batch(batch, BatchStatus.UNKNOWN, error=reason)
    batch.items.filter(outcome=BatchItem.Outcome.PENDING).update(
        outcome=BatchItem.Outcome.UNKNOWN, message=reason
    )
    if batch.institution.kwikid_ignores_repeated_ref_no:
        # KwikID confirmed it ignores a kyc_ref_no it already has: resending is safe, so do it now.
        batch_resolve_unknown(
            actor=None,
            batch_id=batch.pk,
            outcome="resend",
            reason="Automatic: KwikID ignores repeated references.",
        )


def _audit(actor: User | None, action: str, batch: UploadBatch, **detail: Any) -> None:
    AuditEvent.objects.create(
        actor=actor, action=action, object_type="UploadBatch", object_id=str(batch.pk), detail=detail
    )


def _locked_batch(batch_id: int) -> UploadBatch:
    return UploadBatch.objects.select_for_update().select_related("institution").get(pk=batch_id)


@transaction.atomic
def batch_retry_now(*, actor: User, batch_id: int) -> UploadBatch:
    """Send a waiting or failed batch at once; a failed one gets a fresh allowance of attempts."""
    batch = _locked_batch(batch_id)
    limit = batch.attempt_limit
    if batch.status == BatchStatus.FAILED:
        limit = batch.attempt_count + settings.UPLOAD_MAX_ATTEMPTS
    _move_batch(batch, BatchStatus.READY, expected=batch.status, next_attempt_at=None, attempt_limit=limit)
    _audit(actor, "batch_retry_now", batch, previous_status=batch.status)
    transaction.on_commit(lambda: _enqueue_send(batch_id, 0))
    return batch


@transaction.atomic
def batch_cancel(*, actor: User, batch_id: int, reason: str) -> UploadBatch:
    """Close a batch that never reached KwikID; its records go back to the upload queue."""
    if not reason.strip():
        raise ActionRefused("Say why the batch is cancelled.")
    batch = _locked_batch(batch_id)
    if batch.status not in CANCELLABLE:
        raise BatchConflict(f"A batch that is {batch.get_status_display().lower()} cannot be cancelled.")
    _move_batch(batch, BatchStatus.CANCELLED, expected=batch.status, error=f"Cancelled: {reason.strip()}")
    pending = batch.items.filter(outcome=BatchItem.Outcome.PENDING)
    ids = list(pending.values_list("record_id", flat=True))
    pending.update(outcome=BatchItem.Outcome.REQUEUED, message=f"Batch cancelled: {reason.strip()}")
    record_moves.records_requeue(record_ids=ids, reason=f"Batch {batch.pk} was cancelled: {reason.strip()}")
    _audit(actor, "batch_cancelled", batch, previous_status=batch.status, reason=reason.strip())
    return batch


@transaction.atomic
def batch_resolve_unknown(*, actor: User | None, batch_id: int, outcome: str, reason: str) -> UploadBatch:
    """Settle a batch whose answer was lost: KwikID has it ("accepted"), or send it again ("resend")."""
    if outcome not in ("accepted", "resend"):
        raise ActionRefused("Choose whether KwikID has the batch or it is sent again.")
    if not reason.strip():
        raise ActionRefused("Say how you know, for the audit trail.")
    batch = _locked_batch(batch_id)
    if outcome == "accepted":
        who = actor.username if actor else "the portal"
        message = f"KwikID's answer was lost; {who} confirmed it accepted the batch: {reason.strip()}"
        _move_batch(batch, BatchStatus.ACCEPTED, expected=BatchStatus.UNKNOWN)
        unknown = batch.items.filter(outcome=BatchItem.Outcome.UNKNOWN)
        ids = list(unknown.values_list("record_id", flat=True))
        unknown.update(outcome=BatchItem.Outcome.ACCEPTED, message=message)
        record_moves.records_mark_uploaded(record_ids=ids, message=message, actor=actor)
    else:
        _move_batch(
            batch,
            BatchStatus.READY,
            expected=BatchStatus.UNKNOWN,
            finished_at=None,
            next_attempt_at=None,
            attempt_limit=batch.attempt_count + settings.UPLOAD_MAX_ATTEMPTS,
        )
        batch.items.filter(outcome=BatchItem.Outcome.UNKNOWN).update(
            outcome=BatchItem.Outcome.PENDING, message=""
        )
        transaction.on_commit(lambda: _enqueue_send(batch_id, 0))
    _audit(actor, "batch_unknown_resolved", batch, outcome=outcome, reason=reason.strip())
    return batch


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, capped; a server's Retry-After wins when it is longer."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_CAP_SECONDS))
    return delay


def _on_transient(batch: UploadBatch, error: KwikIDTransientError, enqueue: Enqueue) -> SendOutcome:
    reason = f"{type(error).__name__}: {error}"
    if batch.attempt_count >= (batch.attempt_limit or settings.UPLOAD_MAX_ATTEMPTS):
        _set_batch(
            batch,
            BatchStatus.FAILED,
            response_status_code=error.status_code,
            error=f"Gave up after {batch.attempt_count} attempts. Last error: {reason}",
        )
        return SendOutcome(batch.pk, BatchStatus.FAILED)
    retry_after = error.retry_after if isinstance(error, KwikIDRateLimitedError) else None
    delay = retry_delay(batch.attempt_count, retry_after)
    _set_batch(
        batch,
        BatchStatus.RETRY_WAIT,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        response_status_code=error.status_code,
        error=reason,
    )
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue(batch_id, delay))
    return SendOutcome(batch_id, BatchStatus.RETRY_WAIT, retry_in=delay)


def uploads_sweep() -> dict[str, int]:
    """The periodic job: assemble approved records, and ring again for every batch that is due.

    Covers lost Celery messages (READY batches), retries that are due, and batches whose worker died
    (SENDING with an expired lease). Safe to run twice: sending claims each batch conditionally.
    """
    created = batch_assemble(limit=settings.UPLOAD_ASSEMBLE_BATCHES_PER_RUN)
    now = timezone.now()
    due = UploadBatch.objects.filter(
        Q(status=BatchStatus.READY, created_at__lt=now - timedelta(seconds=30))
        | Q(status=BatchStatus.RETRY_WAIT, next_attempt_at__lte=now)
        | Q(status=BatchStatus.SENDING, lease_expires_at__lt=Now())
    ).values_list("pk", flat=True)
    due_ids = list(due)
    for batch_id in due_ids:
        _enqueue_send(batch_id, 0)
    return {"assembled": len(created), "due": len(due_ids)}


def _enqueue_assemble() -> None:
    from .tasks import batch_assemble

    try:
        batch_assemble.delay()
    except Exception:
        logger.warning("Could not enqueue batch assembly; the periodic sweep will do it.", exc_info=True)


def request_assembly() -> None:
    """Ask the worker to assemble and send approved records now, not at the next sweep (after commit)."""
    transaction.on_commit(_enqueue_assemble)
