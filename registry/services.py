"""Following accepted records to the registry: the checking pass, its schedule and "check now".

A 200 from KwikID's upload means "accepted for processing"; the registry holds a record only once it has
given the customer a KIN. A pass searches KwikID's CKYC search by PAN for every record that is due:

- found, with a KYC date on or after the upload day: registered; earlier: registered before upload
  (``records.moves.records_mark_registered``); either stops the checks and the deadline clock;
- not found, unreadable, refused, or KwikID unavailable (5xx, 429, timeouts): the record waits longer,
  each wait three times the one before (``next_check_time``), until the institution's days of checking
  are over (``RegistryCheck.gave_up_at``);
- 401: the institution is paused for searches and uploads alike, exactly as an upload's 401 pauses it;
  replacing the token lifts the pause (``uploads.institution``) and the next pass goes on.

PostgreSQL holds the truth: a pass claims its records first (``RegistryCheck.claimed_until``, rows taken
with ``select_for_update(skip_locked=True)``), so two passes never search for one record at once, and a
pass that died lets go when its lease runs out. The HTTP call happens outside any transaction and any row
lock. Every search is a ``SearchAttempt`` row, counted for the daily cap in ``SearchDay`` as it is kept.
Running a pass twice, also at the same time, is safe.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ckycportal.db import insert_each, update_each
from ckycportal.errors import ActionRefused
from ckycportal.logging import redact
from institutions.models import AuditEvent, Institution, Role, User
from kwikid.client import (
    KwikIDAuthError,
    KwikIDClient,
    KwikIDError,
    KwikIDRateLimitedError,
    KwikIDRejectedError,
    KwikIDTransientError,
    KwikIDUnknownOutcomeError,
    process_session,
)
from kwikid.search import SearchFound, SearchNotFound, SearchResult, SearchUnreadable, mask_identifiers
from records import moves as record_moves
from records.models import KycRecord, Status
from uploads.services import notify_admins_token_refused

from .models import Outcome, RegistryCheck, SearchAttempt, SearchDay

logger = logging.getLogger(__name__)

# RegistryCheck rows made per statement for records that have none yet.
_CREATE_CHUNK = 5000
# A claim outlives the slowest possible batch (every search waiting out both timeouts) by this much.
_LEASE_MARGIN_SECONDS = 60
_NOTE_LENGTH = 500  # SearchAttempt.note's max_length
# A photo's base64 (or any long run like it) and a 14-digit number (a KIN) never reach a note.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{64,}")
_KIN_LIKE = re.compile(r"(?<![0-9])[0-9]{14}(?![0-9])")
# The value of a JSON field whose name says it is about the person (a name, a date of birth, an address, a
# contact, the photo), whatever the shape around it: the answer is not understood, so its keys are guessed.
_PERSONAL_FIELD = re.compile(
    r"""("[^"]*(?:name|father|mother|spouse|dob|birth|age|gender|address|addr|line|city|pin|mobile|phone"""
    r"""|email|photo|image)[^"]*"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9.]+)""",
    re.IGNORECASE,
)
TOKEN_REFUSED_REASON = "KwikID refused the bearer token (HTTP 401). Replace the token to resume sending."


class SearchClient(Protocol):
    """What a pass needs of KwikID: one CKYC search by PAN (``kwikid.client.KwikIDClient``)."""

    def search_pan(self, pan: str) -> SearchResult: ...


@dataclass
class PassSummary:
    """What one checking pass did: counts per outcome (registry.models.Outcome values) and skips."""

    searched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # Institutions passed over and why ("paused": token refused; "cap": the day's searches are used up).
    skipped: dict[str, str] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)  # kyc_ref_no of records registered in this pass


@dataclass(frozen=True)
class _Claimed:
    """One record a pass holds: what the search and the schedule need (the PAN only in memory)."""

    check_id: int
    record_id: int
    kyc_ref_no: str
    pan: str
    uploaded_at: datetime | None
    checks_made: int


def search_client(institution: Institution) -> SearchClient:
    """The institution's KwikID client for searches: its endpoint and token, the uploads' timeouts, and
    this worker process's keep-alive session."""
    return KwikIDClient(
        base_url=institution.api_base_url,
        token=institution.api_token,
        connect_timeout=settings.KWIKID_CONNECT_TIMEOUT,
        read_timeout=settings.KWIKID_READ_TIMEOUT,
        session=process_session(),
    )


def next_check_time(
    *, uploaded_at: datetime, checks_made: int, now: datetime, check_days: int
) -> datetime | None:
    """When to search again after ``checks_made`` searches, or None once the days of checking are over.

    The first search comes REGISTRY_FIRST_CHECK_SECONDS after acceptance; each later wait is three times
    the one before, at most REGISTRY_MAX_CHECK_INTERVAL_SECONDS. The last search falls on the day checking
    ends, so a record is never given up on without a search at the end.
    """
    ends = uploaded_at + timedelta(days=check_days)
    if now >= ends:
        return None
    first = settings.REGISTRY_FIRST_CHECK_SECONDS
    longest = settings.REGISTRY_MAX_CHECK_INTERVAL_SECONDS
    wait = first
    for _ in range(checks_made):
        wait *= 3
        if wait >= longest:
            break
    return min(now + timedelta(seconds=min(wait, longest)), ends)


def registry_checks_create(*, now: datetime | None = None) -> int:
    """Give every uploaded record without a place in the schedule one: its first search falls
    REGISTRY_FIRST_CHECK_SECONDS after KwikID accepted it. Safe to run twice, also at the same time (one
    row per record, conflicts ignored). Returns how many records were looked at."""
    now = now or timezone.now()
    first = timedelta(seconds=settings.REGISTRY_FIRST_CHECK_SECONDS)
    looked_at = 0
    while True:
        rows = list(
            KycRecord.objects.filter(status=Status.UPLOADED, registry_check__isnull=True)
            .order_by()
            .values_list("pk", "branch__institution_id", "uploaded_at", "pan_hash")[:_CREATE_CHUNK]
        )
        if not rows:
            return looked_at
        RegistryCheck.objects.bulk_create(
            [
                # Without a PAN there is nothing to search by: such a record is never due.
                RegistryCheck(
                    record_id=pk,
                    institution_id=institution_id,
                    next_check_at=(uploaded or now) + first if pan_hash else None,
                )
                for pk, institution_id, uploaded, pan_hash in rows
            ],
            ignore_conflicts=True,
        )
        looked_at += len(rows)
        if len(rows) < _CREATE_CHUNK:
            return looked_at


def searches_today(*, institution_id: int, now: datetime | None = None) -> int:
    """How many searches the institution has made on the local day of ``now`` (the daily cap's count)."""
    day = timezone.localdate(now or timezone.now())
    made = SearchDay.objects.filter(institution_id=institution_id, day=day).values_list("searches", flat=True)
    return made.first() or 0


def _count_searches(institution_id: int, at: datetime, searches: int) -> None:
    """Add ``searches`` kept at ``at`` to the institution's count for that local day (SearchDay), in the
    caller's transaction: one row per day, made by the first search, added to atomically by every pass."""
    table = connection.ops.quote_name(SearchDay._meta.db_table)
    # PostgreSQL, and SQLite from 3.24 (``make run``); the values are bound parameters (hence the noqa).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (institution_id, day, searches) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (institution_id, day) DO UPDATE "
            f"SET searches = {table}.searches + excluded.searches",
            [institution_id, timezone.localdate(at), searches],
        )


@contextlib.contextmanager
def due_index_walk() -> Iterator[None]:
    """Inside a transaction: PostgreSQL takes the due records by walking registry_check_due in order, and
    stops after the claim's few, whatever its statistics say.

    "Due" moves with the clock, not with the rows: statistics gathered when most records were due later
    make PostgreSQL believe that few are due now. It then collects every due row into a bitmap and sorts
    them all to take the first few (at 100,000 waiting records, most of a pass's database time). Without
    bitmap scans and sorts, the index's own order is the plan. Outside PostgreSQL, nothing changes.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    yield
    # Not on an error: the failed transaction is rolled back, and its SET LOCAL with it.
    with connection.cursor() as cursor:
        cursor.execute("RESET enable_bitmapscan")
        cursor.execute("RESET enable_sort")


def _claim(
    institution_id: int,
    *,
    want: int,
    due_by: datetime,
    now: datetime,
    record_ids: set[int] | None,
    done: set[int],
) -> tuple[str, Institution | None, list[_Claimed], datetime | None]:
    """Take up to ``want`` of the institution's due records (or of ``record_ids``, due or not) for this
    pass, within the day's searches left. Returns ("ok", institution, claimed, lease) or a reason to skip
    the institution ("paused", "no token", "cap")."""
    with transaction.atomic():
        # The institution's row lock serialises claims per institution, so the daily cap holds even for
        # passes running at the same time: searches made today plus those claimed and not yet made.
        institution = Institution.objects.select_for_update().filter(pk=institution_id).first()
        if institution is None:
            return "gone", None, [], None
        if institution.sending_paused_at is not None:
            return "paused", institution, [], None
        if not institution.api_token:
            return "no token", institution, [], None
        in_flight = RegistryCheck.objects.filter(institution_id=institution_id, claimed_until__gt=now).count()
        room = institution.registration_daily_searches - searches_today(
            institution_id=institution_id, now=now
        )
        room -= in_flight
        if room <= 0:
            return "cap", institution, [], None
        checks = RegistryCheck.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=now), institution_id=institution_id
        )
        walk: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if record_ids is not None:
            checks = checks.filter(record_id__in=record_ids - done, record__status=Status.UPLOADED).exclude(
                record__pan_hash=""
            )
        else:
            # Only a record still waiting has a next check (registration, giving up and a missing PAN clear
            # it), so the due records are one walk of registry_check_due, without joining the records.
            checks = checks.filter(next_check_at__lte=due_by)
            walk = due_index_walk()
        with walk:
            rows = list(
                checks.order_by("next_check_at", "pk").values_list("pk", "record_id", "checks_made")[
                    : min(want, room)
                ]
            )
        if not rows:
            return "ok", institution, [], None
        http = settings.KWIKID_CONNECT_TIMEOUT + settings.KWIKID_READ_TIMEOUT
        lease = now + timedelta(seconds=len(rows) * http + _LEASE_MARGIN_SECONDS)
        RegistryCheck.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(claimed_until=lease)
    # Read after the claim's commit: the PAN is decrypted without holding any lock. Found by primary key
    # whatever the statistics say: the status and the PAN are checked here, not in the query, where a
    # status condition let PostgreSQL walk every waiting record's index entry to find these few.
    found = KycRecord.objects.filter(pk__in=[r for _, r, _ in rows]).order_by()
    records = {
        pk: (ref, pan, uploaded)
        for pk, ref, pan, uploaded, status, pan_hash in found.values_list(
            "pk", "kyc_ref_no", "pan", "uploaded_at", "status", "pan_hash"
        )
        if status == Status.UPLOADED and pan_hash
    }
    strays = [check_id for check_id, record_id, _ in rows if record_id not in records]
    if strays:  # no longer waiting, or nothing to search by: out of the schedule
        RegistryCheck.objects.filter(pk__in=strays, claimed_until=lease).update(
            next_check_at=None, claimed_until=None
        )
    claimed = [
        _Claimed(check_id, record_id, *records[record_id], checks_made)
        for check_id, record_id, checks_made in rows
        if record_id in records
    ]
    return "ok", institution, claimed, lease


def _release(claimed: Iterable[_Claimed], lease: datetime) -> None:
    """Let go of claimed records that were not searched (the pass stopped for the institution)."""
    RegistryCheck.objects.filter(pk__in=[c.check_id for c in claimed], claimed_until=lease).update(
        claimed_until=None
    )


def _masked_excerpt(text: str) -> str:
    """What support may keep of an answer: identifiers masked, base64 runs (the photo) cut, truncated."""
    text = _PERSONAL_FIELD.sub(lambda match: f"{match.group(1)}[MASKED]", text)
    text = _BASE64_RUN.sub("[BASE64]", text)
    text = mask_identifiers(redact(_KIN_LIKE.sub("[KIN]", text)))
    return text if len(text) <= _NOTE_LENGTH else text[: _NOTE_LENGTH - 1] + "…"


def _how_found(asked_by: str | None, kyc_date: date | None) -> str:
    """The registration note: how the KIN was found and the registry's KYC date (when: registered_at)."""
    how = f"By a check asked for by {asked_by}" if asked_by else "By the scheduled check"
    dated = f"the registry's KYC date is {kyc_date:%d %b %Y}" if kyc_date else "the registry gave no KYC date"
    return f"{how}; {dated}."


@dataclass(frozen=True)
class _Kept:
    """What one search came to, ready to be kept (``found``: the registry's answer when it holds the record;
    ``reschedule`` False: the token was refused, the record keeps its place)."""

    claimed: _Claimed
    outcome: str
    status_code: int | None
    elapsed_ms: int | None
    note: str
    found: SearchFound | None = None
    reschedule: bool = True


def _pause_institution(institution: Institution) -> None:
    """A 401 pauses the institution's searches and uploads alike, with the uploads' banner and mail."""
    paused = Institution.objects.filter(pk=institution.pk, sending_paused_at__isnull=True).update(
        sending_paused_at=timezone.now(), sending_paused_reason=TOKEN_REFUSED_REASON
    )
    if paused:
        institution_id = institution.pk
        transaction.on_commit(lambda: notify_admins_token_refused(institution_id))


class _Stop(Exception):
    """The institution's searches stop for this pass: ``reason`` goes to the summary."""

    def __init__(self, reason: str, hold_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hold_seconds = hold_seconds


def _search(client: SearchClient, claimed: _Claimed) -> tuple[_Kept, _Stop | None]:
    """Search for one claimed record (outside any transaction) and say what the answer means; the _Stop
    when the institution's searches must stop (token refused, rate limited)."""
    result: SearchResult | None = None
    error: KwikIDError | None = None
    started = time.monotonic()
    try:
        result = client.search_pan(claimed.pan)
    except KwikIDError as exc:
        error = exc
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if isinstance(result, SearchFound):
        note = f"KIN found ({result.shape} answer)"
        return _Kept(claimed, Outcome.REGISTERED, result.status_code, result.elapsed_ms, note, result), None
    if isinstance(result, SearchNotFound):
        note = _masked_excerpt(result.reason)
        return _Kept(claimed, Outcome.NOT_FOUND, result.status_code, result.elapsed_ms, note), None
    if isinstance(result, SearchUnreadable):
        note = _masked_excerpt(result.excerpt)
        return _Kept(claimed, Outcome.UNREADABLE, result.status_code, result.elapsed_ms, note), None
    assert error is not None
    if isinstance(error, KwikIDAuthError):
        kept = _Kept(
            claimed, Outcome.TOKEN_REFUSED, error.status_code, elapsed_ms, str(error), reschedule=False
        )
        return kept, _Stop("paused")
    if isinstance(error, KwikIDRejectedError):
        note = _masked_excerpt(f"{error} {error.message}".strip())
        return _Kept(claimed, Outcome.REFUSED, error.status_code, elapsed_ms, note), None
    # 5xx, 429, timeouts and dropped connections: a search changes nothing at KwikID, so even an answer
    # that never came is simply asked again later, on the same back-off.
    kept = _Kept(claimed, Outcome.FAILED, error.status_code, elapsed_ms, _masked_excerpt(str(error)))
    if isinstance(error, KwikIDRateLimitedError):
        return kept, _Stop("rate limited", error.retry_after)
    if not isinstance(error, KwikIDTransientError | KwikIDUnknownOutcomeError):
        logger.warning("Registry search for record %s failed: %s", claimed.record_id, type(error).__name__)
    return kept, None


_ATTEMPT_FIELDS = ("institution", "record", "outcome", "status_code", "elapsed_ms", "note", "created_at")
_CHECK_FIELDS = (
    "claimed_until",
    "checks_made",
    "last_checked_at",
    "last_outcome",
    "next_check_at",
    "gave_up_at",
)


def _keep(
    institution: Institution,
    batch: list[_Kept],
    lease: datetime,
    summary: PassSummary,
    *,
    now: datetime | None,
    asked_by: str | None,
    pause: bool,
) -> None:
    """Keep a batch of searches in one transaction: the registrations (with their events), a SearchAttempt
    each, and each record's next place in the schedule. Only the pass still holding a record's claim moves
    its schedule; the attempts are kept in any case. Set-based: a handful of statements per batch."""
    at = now or timezone.now()
    with transaction.atomic():
        moved = record_moves.records_mark_registered_many(
            found=[
                record_moves.FoundKin(
                    kept.claimed.record_id,
                    kept.found.kin,
                    kept.found.kyc_date,
                    _how_found(asked_by, kept.found.kyc_date),
                )
                for kept in batch
                if kept.found is not None
            ]
        )
        outcomes = [
            Outcome.PREEXISTING if moved.get(kept.claimed.record_id) == Status.PREEXISTING else kept.outcome
            for kept in batch
        ]
        insert_each(
            SearchAttempt,
            _ATTEMPT_FIELDS,
            [
                (
                    institution.pk,
                    kept.claimed.record_id,
                    outcome,
                    kept.status_code,
                    kept.elapsed_ms,
                    kept.note[:_NOTE_LENGTH],
                    at,
                )
                for kept, outcome in zip(batch, outcomes, strict=True)
            ],
        )
        if batch:
            _count_searches(institution.pk, at, len(batch))
        held = set(
            RegistryCheck.objects.filter(
                pk__in=[kept.claimed.check_id for kept in batch], claimed_until=lease
            ).values_list("pk", flat=True)
        )
        waiting = [
            kept.claimed.check_id for kept in batch if not kept.reschedule and kept.claimed.check_id in held
        ]
        if waiting:  # the token was refused: these records keep their place, the institution waits
            RegistryCheck.objects.filter(pk__in=waiting).update(claimed_until=None)
        rows: list[tuple[Any, ...]] = []
        for kept, outcome in zip(batch, outcomes, strict=True):
            claimed = kept.claimed
            if not kept.reschedule or claimed.check_id not in held:
                continue
            made = claimed.checks_made + 1
            next_at: datetime | None = None
            gave_up: datetime | None = None
            if outcome not in (Outcome.REGISTERED, Outcome.PREEXISTING):
                next_at = next_check_time(
                    uploaded_at=claimed.uploaded_at or at,
                    checks_made=made,
                    now=at,
                    check_days=institution.registration_check_days,
                )
                gave_up = at if next_at is None else None
            rows.append((claimed.check_id, None, made, at, outcome, next_at, gave_up))
        update_each(RegistryCheck, _CHECK_FIELDS, rows)
        if pause:
            _pause_institution(institution)
    summary.searched += len(batch)
    for kept, outcome in zip(batch, outcomes, strict=True):
        summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
        if kept.claimed.record_id in moved:
            summary.found.append(kept.claimed.kyc_ref_no)


def _wanted_records(refs: Iterable[str] | None, record_ids: Iterable[int] | None) -> set[int] | None:
    """The uploaded records a pass is limited to, or None for every due record."""
    if refs is None and record_ids is None:
        return None
    uploaded = KycRecord.objects.filter(status=Status.UPLOADED)
    wanted: set[int] = set()
    if refs is not None:
        wanted |= set(uploaded.filter(kyc_ref_no__in=list(refs)).values_list("pk", flat=True))
    if record_ids is not None:
        wanted |= set(uploaded.filter(pk__in=list(record_ids)).values_list("pk", flat=True))
    return wanted


def registrations_check(
    *,
    limit: int | None = None,
    refs: Iterable[str] | None = None,
    now: datetime | None = None,
    record_ids: Iterable[int] | None = None,
    asked_by: str | None = None,
    budget_seconds: float | None = None,
) -> PassSummary:
    """One pass: search for every due record (or only ``refs``, due or not), at most ``limit``.

    ``record_ids`` limits the pass like ``refs`` (by id: what "check now" queues); ``asked_by`` is the
    username that asked for it, for the registration note; after ``budget_seconds`` the pass stops between
    batches and leaves the rest to the next. Institutions take turns, a batch of REGISTRY_CHECK_BATCH at a
    time, until nothing is due, the day's searches are used up, or ``limit`` is reached. Each record is
    searched at most once a pass. Safe to run twice, also at the same time (claims).
    """
    started = time.monotonic()
    summary = PassSummary()
    registry_checks_create(now=now)
    wanted = _wanted_records(refs, record_ids)
    if wanted is not None and not wanted:
        return summary
    due_by = now or timezone.now()  # a record backed off during this pass is not due again in it
    checks = RegistryCheck.objects.all()
    if wanted is not None:
        checks = checks.filter(record_id__in=wanted)
    else:
        checks = checks.filter(next_check_at__lte=due_by)
    # Institutions take turns: the first in line claims a batch and goes to the back.
    turns = collections.deque(
        sorted(set(checks.order_by().values_list("institution_id", flat=True).distinct()))
    )
    done: set[int] = set()
    held_until: dict[int, float] = {}
    clients: dict[int, SearchClient] = {}
    # Searches change nothing at KwikID, so a batch's are made a few at a time (REGISTRY_SEARCH_THREADS):
    # KwikID's latency is waited out in parallel. The threads only search; the database stays here.
    threads = settings.REGISTRY_SEARCH_THREADS
    pool = ThreadPoolExecutor(threads, thread_name_prefix="registry-search") if threads > 1 else None
    # A batch is searched from a thread of its own, so that the next batch is being searched while this
    # thread keeps the one before: KwikID's answers and PostgreSQL's writes overlap.
    ahead = ThreadPoolExecutor(1, thread_name_prefix="registry-batch")

    def start_next(unkept: int) -> _InFlight | None:
        """Claim a batch for the next institution in turn and start its searches; None when the pass is over
        (the limit or the time budget reached, nothing due, or every institution left held back)."""
        passed_over = 0
        while turns and passed_over < len(turns):
            searched = summary.searched + unkept
            if limit is not None and searched >= limit:
                return None
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                return None
            institution_id = turns[0]
            turns.rotate(-1)
            if held_until.get(institution_id, 0.0) > time.monotonic():
                passed_over += 1
                continue
            want = settings.REGISTRY_CHECK_BATCH
            if limit is not None:
                want = min(want, limit - searched)
            state, institution, claimed, lease = _claim(
                institution_id,
                want=want,
                due_by=due_by,
                now=now or timezone.now(),
                record_ids=wanted,
                done=done,
            )
            if state != "ok" or not claimed or institution is None or lease is None:
                turns.remove(institution_id)
                if state != "ok" and institution is not None:
                    summary.skipped[institution.name] = state
                continue
            try:
                client = clients.get(institution_id) or search_client(institution)
            except ValueError:  # an endpoint the client refuses: nothing can be searched for it
                _release(claimed, lease)
                turns.remove(institution_id)
                summary.skipped[institution.name] = "misconfigured"
                continue
            clients[institution_id] = client
            searches = ahead.submit(_search_batch, client, institution, claimed, pool)
            return _InFlight(institution, claimed, lease, searches)
        return None

    try:
        pending = start_next(0)
        while pending is not None:
            current = pending
            batch, stop = current.searches.result()
            done.update(kept.claimed.record_id for kept in batch)
            institution_id = current.institution.pk
            if stop is not None:
                if stop.reason == "rate limited" and stop.hold_seconds is not None:
                    held_until[institution_id] = time.monotonic() + stop.hold_seconds
                elif institution_id in turns:
                    turns.remove(institution_id)
            # Decided before the keep: a paused or held institution gets no next batch.
            pending = start_next(unkept=len(batch))
            paused = stop is not None and stop.reason == "paused"
            _keep(
                current.institution, batch, current.lease, summary, now=now, asked_by=asked_by, pause=paused
            )
            if stop is not None:
                _release(current.claimed[len(batch) :], current.lease)
                summary.skipped[current.institution.name] = stop.reason
    finally:
        # After an error, a batch whose searches have begun is searched to its end; claimed records not
        # kept are left to their lease, as by a pass that died.
        ahead.shutdown(cancel_futures=True)
        if pool is not None:
            pool.shutdown()
    return summary


@dataclass(frozen=True)
class _InFlight:
    """A claimed batch whose searches are under way."""

    institution: Institution
    claimed: list[_Claimed]
    lease: datetime
    searches: Future[tuple[list[_Kept], _Stop | None]]


def _search_batch(
    client: SearchClient, institution: Institution, claimed: list[_Claimed], pool: ThreadPoolExecutor | None
) -> tuple[list[_Kept], _Stop | None]:
    """Search for a claimed batch, in waves of the pool's size; stops after the wave in which KwikID
    refused the token or rate-limited us (what was searched is kept, the rest is released)."""
    if pool is None:
        batch: list[_Kept] = []
        for one in claimed:
            kept, stop = _search(_thread_client(institution, client), one)
            batch.append(kept)
            if stop is not None:
                return batch, stop
        return batch, None
    wave = settings.REGISTRY_SEARCH_THREADS
    batch = []
    for start in range(0, len(claimed), wave):
        answers = list(
            pool.map(
                lambda one: _search(_thread_client(institution, client), one), claimed[start : start + wave]
            )
        )
        batch += [kept for kept, _ in answers]
        stops = [stop for _, stop in answers if stop is not None]
        if stops:
            paused = [stop for stop in stops if stop.reason == "paused"]
            return batch, (paused or stops)[0]
    return batch, None


_threads = threading.local()


def _thread_client(institution: Institution, client: SearchClient) -> SearchClient:
    """The search client for this thread: a KwikIDClient on the thread's own keep-alive session (sessions
    are not shared between threads); any other client (a test's) as it is."""
    if not isinstance(client, KwikIDClient):
        return client
    key = (institution.pk, institution.api_base_url, institution.api_token)
    if getattr(_threads, "key", None) != key:
        _threads.key, _threads.client = key, search_client(institution)
    return _threads.client  # type: ignore[no-any-return]


def _enqueue_pass(record_ids: list[int] | None, asked_by_id: int | None) -> None:
    # Imported here: tasks import services. A lost doorbell only delays: the record is due, beat's pass
    # finds it.
    from .tasks import registrations_check as task

    try:
        task.delay(record_ids=record_ids, asked_by_id=asked_by_id)
    except Exception:
        logger.warning("Could not queue a registry check; the periodic pass will make it.", exc_info=True)


def _make_due(record_ids: list[int], now: datetime) -> int:
    """Put these uploaded records first in the schedule (a gave-up one starts again)."""
    registry_checks_create(now=now)
    return RegistryCheck.objects.filter(record_id__in=record_ids, record__status=Status.UPLOADED).update(
        next_check_at=now, gave_up_at=None
    )


@transaction.atomic
def record_check_now(*, actor: User, record_id: int) -> None:
    """A checker or admin asks for one accepted record to be searched now (queued for the worker)."""
    record = KycRecord.objects.select_related("branch").filter(pk=record_id).first()
    if actor.role == Role.ADMIN:
        allowed = record is not None
    else:
        allowed = (
            actor.role == Role.CHECKER
            and record is not None
            and actor.branches.filter(pk=record.branch_id).exists()
        )
    if not allowed or record is None:
        raise ActionRefused("Only a checker of the record's branch or an administrator can ask for a check.")
    if record.status != Status.UPLOADED:
        raise ActionRefused(
            f"Only a record accepted by KwikID and not yet registered is checked; this one is "
            f"{record.get_status_display().lower()}."
        )
    _make_due([record.pk], timezone.now())
    AuditEvent.objects.create(
        actor=actor, action="registry_check_now", object_type="KycRecord", object_id=str(record.pk)
    )
    asked_by_id = actor.pk
    transaction.on_commit(lambda: _enqueue_pass([record_id], asked_by_id))


@transaction.atomic
def records_check_now(*, actor: User, record_ids: Iterable[int]) -> int:
    """An admin makes a filtered set of accepted records due now; the next pass searches them within the
    daily cap. Returns how many were made due."""
    if actor.role != Role.ADMIN:
        raise ActionRefused("Only an administrator can ask for many records to be checked at once.")
    made_due = 0
    ids = list(dict.fromkeys(record_ids))
    now = timezone.now()
    for start in range(0, len(ids), _CREATE_CHUNK):
        made_due += _make_due(ids[start : start + _CREATE_CHUNK], now)
    AuditEvent.objects.create(
        actor=actor,
        action="registry_check_now",
        object_type="KycRecord",
        detail={"records_asked": len(ids), "made_due": made_due},
    )
    if made_due:
        transaction.on_commit(lambda: _enqueue_pass(None, None))
    return made_due
