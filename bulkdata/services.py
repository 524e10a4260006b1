"""Bulk import: every write, each owning its transaction and its audit.

``records_import`` is the engine the command, the pages and the benchmark share. It streams the file in
chunks of CHUNK_ROWS: each row is converted, cleaned and validated exactly as ``records.services`` would
(bulkdata.rows), checked for duplicates in the file and in the database, and, when saving, written with
COPY (PostgreSQL) or bulk_create (elsewhere) together with the same RecordEvents the single-record
services write. Saving is one transaction: all or nothing, or only the valid rows when asked.

On PostgreSQL a file longer than one chunk has its rows prepared (validated, hashed and, for COPY,
encrypted and formatted) by worker processes, a few chunks ahead, while this process checks duplicates and
PostgreSQL writes the chunks before: the per-row Python work and the database's index maintenance then use
different cores. Chunks still come back in file order, so row numbers, problems and progress are the same.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import threading
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Field
from django.db.models.functions import Upper
from django.utils import timezone

from ckycportal import crypto
from ckycportal.fields import EncryptedTextField
from codelists.codes import CodeBook
from codelists.selectors import code_book
from institutions.models import AuditEvent, Branch, Role, User
from kwikid.fields import FIELDS
from records.models import KycRecord, RecordEvent, RecordNameToken, Status
from records.services import due_on, name_tokens
from records.validation import Problem

from .models import JOB_TRANSITIONS, ImportFileChunk, ImportJob, ImportProblem, JobStatus
from .parsers import MAX_UPLOAD_BYTES, FileRefused, Opener, RawRow, detect_format, read_rows
from .rows import PreparedRow, blocks, prepare

CHUNK_ROWS = 2_000
# Worker processes preparing rows (PostgreSQL only, files longer than one chunk; below 2 turns them off),
# and the chunks each may have waiting, which bounds the memory they hold. More than 4 would only wait: this
# process and PostgreSQL, writing, take about as long a row as two or three workers preparing it.
POOL_WORKERS = min(os.cpu_count() or 1, 4)
CHUNKS_AHEAD_PER_WORKER = 2
FILE_CHUNK_BYTES = 1024 * 1024
IMPORT_FILE_KEEP_HOURS = 24
LEASE_SECONDS = 600
# Problems kept for the preview page and the error file; beyond this only counted (the message says so).
MAX_STORED_PROBLEMS = 200_000

ProblemSink = Callable[[int, list[Problem]], None]
Progress = Callable[[int], None]


class ImportRejected(Exception):
    """An all-or-nothing import met invalid rows: nothing was saved."""

    def __init__(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome
        super().__init__(
            f"{outcome.invalid} of {outcome.rows} rows are invalid; nothing was imported. "
            "Fix them, or import only the valid rows."
        )


class ImportConflict(Exception):
    """The database refused the rows (a record saved meanwhile has one of their reference numbers)."""


@dataclass
class ImportOutcome:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    errors: int = 0
    warnings: int = 0
    created: int = 0
    saved: bool = False

    def summary(self, *, dry_run: bool = False) -> str:
        done = (
            "dry run, nothing saved"
            if dry_run
            else (f"{self.created} records created" if self.saved else "nothing saved")
        )
        return (
            f"{self.rows} rows: {self.valid} valid, {self.invalid} invalid "
            f"({self.errors} errors, {self.warnings} warnings); {done}"
        )


# --- the engine -------------------------------------------------------------------------------------


def _require_maker(actor: User, branch: Branch) -> None:
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) import KYC records.")
    if not actor.branches.filter(pk=branch.pk).exists():
        raise PermissionDenied("You do not work at this branch.")


class _FirstRows:
    """The first row of each key (a 63-bit hash), in flat arrays: 12 bytes a slot instead of ~110 bytes of
    Python objects a dict entry, so a million-row file's references and PANs take ~50 MB, not ~220 MB.

    Open addressing with linear probing, kept at most half full. Two different values share a 63-bit hash
    with a probability of about 1 in 10^7 for a million rows; the duplicate reported would name the row.
    """

    _MASK63 = (1 << 63) - 1

    def __init__(self, capacity: int = 1 << 14) -> None:
        self._size = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self._keys = array("q", bytes(8 * capacity))
        self._rows = array("I", bytes(4 * capacity))  # row numbers stay below 2**32
        self._mask = capacity - 1

    def first(self, key: int, row: int) -> int:
        """The row first seen with ``key``; remembers ``row`` (and returns it) when the key is new."""
        key = (key & self._MASK63) or 1  # 0 marks an empty slot
        keys, mask = self._keys, self._mask
        i = key & mask
        while True:
            found = keys[i]
            if found == 0:
                keys[i] = key
                self._rows[i] = row
                self._size += 1
                if self._size * 2 > mask:
                    self._grow()
                return row
            if found == key:
                return self._rows[i]
            i = (i + 1) & mask

    def _grow(self) -> None:
        keys, rows = self._keys, self._rows  # reinserted straight from the old arrays, no list of pairs
        self._allocate((self._mask + 1) * 2)
        self._size = 0
        for key, row in zip(keys, rows, strict=True):
            if key:
                self.first(key, row)


@dataclass
class _Scan:
    """What one pass over a file remembers: rows seen (for duplicates) and the actor's branches."""

    actor: User
    branch: Branch
    branches: dict[str, int]
    visible_branches: set[int]
    warnings_block: bool
    # Upper-cased kyc_ref_no's hash -> first row; a 64-bit prefix of the PAN's keyed hash -> first row.
    refs: _FirstRows = field(default_factory=_FirstRows)
    pans: _FirstRows = field(default_factory=_FirstRows)

    def finish(self, chunk: list[PreparedRow]) -> list[PreparedRow]:
        """Branch codes, then duplicates in the file, then in the database (two indexed queries)."""
        refs: dict[str, PreparedRow] = {}
        hashes: dict[str, list[PreparedRow]] = {}
        for row in chunk:
            failed = {p.field for p in row.problems if p.is_error}
            if row.branch_code and row.branch_code not in self.branches:
                row.problems.append(
                    Problem(
                        "branch_code",
                        f"You do not work at branch {row.branch_code[:20]}: use one of "
                        f"{', '.join(sorted(self.branches))}, or leave it blank for {self.branch.code}",
                    )
                )
            ref = row.ref_key
            if ref and "kyc_ref_no" not in failed:
                first = self.refs.first(hash(ref), row.number)
                if first != row.number:
                    row.problems.append(
                        Problem("kyc_ref_no", f"KYC reference number repeats row {first} of this file")
                    )
                else:
                    refs[ref] = row
            pan_hash = row.pan_hash
            if pan_hash and "pan" not in failed:
                key = int(pan_hash[:16], 16)
                first = self.pans.first(key, row.number)
                if first != row.number:
                    row.problems.append(
                        Problem(
                            "pan",
                            f"Same PAN as row {first} of this file: check that this is not the same "
                            "customer twice",
                            "warning",
                        )
                    )
                hashes.setdefault(pan_hash, []).append(row)
        if refs:
            for ref in _taken_refs(list(refs)):
                refs[ref].problems.append(
                    Problem(
                        "kyc_ref_no",
                        "Another record already has this KYC reference number (ignoring case); each must "
                        "be unique",
                    )
                )
        if hashes:
            for pan_hash, ref, branch_id in _same_pans(list(hashes)):
                # Another branch's reference numbers are not shown to this user (deny by default).
                named = f" ({ref})" if branch_id in self.visible_branches else ""
                for row in hashes[pan_hash]:
                    row.problems.append(
                        Problem(
                            "pan",
                            f"Another record{named} has the same PAN: check that this is not the same "
                            "customer twice",
                            "warning",
                        )
                    )
        for row in chunk:
            row.blocked = blocks(row.problems, warnings_block=self.warnings_block)
        return chunk


class _Stage:
    """What happens to each row before the duplicate checks, with no database: ``prepare`` (convert, clean,
    validate), the PAN's keyed hash and, for COPY, the record's line and name tokens. Runs in this process
    or in the workers (``_stage_in_worker``)."""

    def __init__(
        self,
        *,
        today: date,
        codes: CodeBook,
        warnings_block: bool,
        lines: _RecordLines | None,
        keep_values: bool,
    ) -> None:
        self.today = today
        self.codes = codes
        self.warnings_block = warnings_block
        self.lines = lines
        self.keep_values = keep_values  # the ORM path writes from the values

    def run(self, raws: list[RawRow]) -> list[PreparedRow]:
        prepared = []
        lines = self.lines
        for raw in raws:
            row = prepare(raw, today=self.today, warnings_block=self.warnings_block, codes=self.codes)
            pan = row.values["pan"]
            row.pan_hash = crypto.keyed_hash(pan) if pan else ""
            if lines is not None and not row.blocked:
                # A row blocked already stays blocked: duplicates and branches only add problems.
                row.line, row.tokens = lines.format(row)
            if self.keep_values:
                row.values["pan_hash"] = row.pan_hash
            else:
                row.values = {}  # not needed any more: nothing to send back from a worker
            prepared.append(row)
        return prepared


# In a worker: the stage of the import that forked it (set by _fork_pool's initializer).
_worker_stage: _Stage | None = None


def _set_worker_stage(stage: _Stage) -> None:
    global _worker_stage
    _worker_stage = stage


# Rows cross between the processes as plain tuples: pickling the dataclasses took three times as long.
_Packed = tuple[Any, ...]


def _stage_in_worker(packed: list[_Packed]) -> list[_Packed]:
    assert _worker_stage is not None
    prepared = _worker_stage.run([RawRow(*raw) for raw in packed])
    return [
        (r.number, r.problems, r.values, r.branch_code, r.blocked, r.ref_key, r.pan_hash, r.line, r.tokens)
        for r in prepared
    ]


def _send(chunk: list[RawRow]) -> tuple[list[_Packed]]:
    return ([(raw.number, raw.values, raw.notes) for raw in chunk],)


def _received(packed: list[_Packed]) -> list[PreparedRow]:
    return [PreparedRow(*row) for row in packed]


def _raw_chunks(rows: Iterable[RawRow]) -> Iterator[list[RawRow]]:
    chunk: list[RawRow] = []
    for raw in rows:
        chunk.append(raw)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fork_pool(workers: int, stage: _Stage) -> Any:
    """Forked workers: they start with the code book, the keys and the stage (handed over by fork, not
    pickled), and never open the database, so this process's connection and transaction stay its own."""
    context: Any = multiprocessing.get_context("fork")
    if multiprocessing.current_process().daemon:
        # A Celery prefork child (docker-compose's worker): multiprocessing refuses a daemonic process
        # children; billiard, Celery's own fork of it with the same API, allows them.
        import billiard

        context = billiard.get_context("fork")
    return context.Pool(workers, initializer=_set_worker_stage, initargs=(stage,))


def _prepared_chunks(
    rows: Iterable[RawRow], stage: _Stage, *, parallel: bool
) -> Generator[list[PreparedRow], None, None]:
    """The file's rows through ``stage``, chunk by chunk in file order; in worker processes when
    ``parallel`` and the file has more than one chunk."""
    raw_chunks = _raw_chunks(rows)
    first = next(raw_chunks, None)
    if first is None:
        return
    workers = POOL_WORKERS
    if not parallel or workers < 2 or len(first) < CHUNK_ROWS:
        yield stage.run(first)
        for raw in raw_chunks:
            yield stage.run(raw)
        return
    pool = _fork_pool(workers, stage)
    try:
        pending = deque([pool.apply_async(_stage_in_worker, _send(first))])
        failed: Exception | None = None
        while True:
            try:
                chunk = next(raw_chunks, None)
            except Exception as exc:  # a bad file: first the chunks before it, as when reading in order
                failed = exc
                break
            if chunk is None:
                break
            pending.append(pool.apply_async(_stage_in_worker, _send(chunk)))
            if len(pending) > workers * CHUNKS_AHEAD_PER_WORKER:
                yield _received(pending.popleft().get())
        while pending:
            yield _received(pending.popleft().get())
        if failed is not None:
            raise failed
    finally:
        pool.terminate()
        pool.join()


# On PostgreSQL a chunk's values go as one array parameter: building, sending and planning 2,000
# placeholders took longer than the index lookups themselves.
_TAKEN_REFS = "SELECT UPPER(kyc_ref_no) FROM {table} WHERE UPPER(kyc_ref_no) = ANY(%s)"
_SAME_PANS = "SELECT pan_hash, kyc_ref_no, branch_id FROM {table} WHERE pan_hash = ANY(%s)"


def _record_sql(sql: str) -> str:
    return sql.format(table=connection.ops.quote_name(KycRecord._meta.db_table))


def _taken_refs(refs: list[str]) -> list[str]:
    """The upper-cased reference numbers among ``refs`` that records already have."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_record_sql(_TAKEN_REFS), [refs])
            return [ref for (ref,) in cursor.fetchall()]
    taken = KycRecord.objects.annotate(ref_upper=Upper("kyc_ref_no")).filter(ref_upper__in=refs)
    return list(taken.values_list("ref_upper", flat=True))


def _same_pans(hashes: list[str]) -> list[tuple[str, str, int]]:
    """(pan_hash, kyc_ref_no, branch_id) of the records whose PAN has one of these hashes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_record_sql(_SAME_PANS), [hashes])
            return list(cursor.fetchall())
    return list(
        KycRecord.objects.filter(pan_hash__in=hashes).values_list("pan_hash", "kyc_ref_no", "branch_id")
    )


def _chunks(rows: Iterable[list[PreparedRow]], scan: _Scan) -> Iterator[list[PreparedRow]]:
    for chunk in rows:
        yield scan.finish(chunk)


def records_import(
    *,
    actor: User,
    branch: Branch,
    opener: Opener,
    filename: str = "",
    save: bool,
    only_valid: bool = False,
    submit: bool = False,
    on_problems: ProblemSink | None = None,
    progress: Progress | None = None,
    after_save: Callable[[ImportOutcome], None] | None = None,
) -> ImportOutcome:
    """Check (``save=False``) or import a file of records for ``branch`` (rows may name another of the
    actor's branches in ``branch_code``).

    Saving is one transaction: by default all or nothing (ImportRejected, nothing saved, when any row is
    invalid); ``only_valid`` saves the valid rows and skips the others. Raises FileRefused for a bad file
    and ImportConflict when the database refuses the rows. ``after_save`` runs inside the transaction.
    """
    _require_maker(actor, branch)
    scan = _Scan(
        actor=actor,
        branch=branch,
        branches={b.code.upper(): b.pk for b in actor.branches.all()},
        visible_branches=set(actor.branches.values_list("pk", flat=True)),
        warnings_block=branch.institution.warnings_block,
    )
    outcome = ImportOutcome()
    writer = (
        _Writer(actor=actor, default_branch=branch, branches=scan.branches, submit=submit) if save else None
    )
    lines = writer.lines if writer is not None else None
    crypto.encrypt_many([])  # the keys derived once, before any worker is forked
    stage = _Stage(
        today=timezone.localdate(),
        codes=code_book(),  # the admin-edited code lists and PIN master, once for the whole file
        warnings_block=scan.warnings_block,
        lines=lines,
        keep_values=writer is not None and lines is None,
    )
    prepared = _prepared_chunks(
        read_rows(opener, filename), stage, parallel=connection.vendor == "postgresql" and POOL_WORKERS > 1
    )
    with closing(prepared):  # the workers stop however the import ends
        if writer is None:
            for chunk in _chunks(prepared, scan):
                _count(chunk, outcome, on_problems)
                if progress:
                    progress(outcome.rows)
            return outcome
        return _save(writer, _chunks(prepared, scan), outcome, only_valid, on_problems, progress, after_save)


@contextmanager
def _index_lookups() -> Iterator[None]:
    """Within the import's transaction on PostgreSQL: the duplicate checks probe the indexes.

    The import grows the table faster than its statistics follow. Without them (a new table, or one the
    import itself doubles) the planner takes a chunk's 2,000 PAN hashes to match every row and reads the
    whole table for each chunk: quadratic in the file (1.5-2 s of 100,000 rows), where each hash is one
    probe of record_pan_hash. set_config(..., true) lasts only to the end of the transaction, and a
    rollback of the import's savepoint undoes it; on success the previous value is put back here.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        previous = cursor.fetchone()[0]
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [previous])


def _save(
    writer: _Writer,
    chunks: Iterator[list[PreparedRow]],
    outcome: ImportOutcome,
    only_valid: bool,
    on_problems: ProblemSink | None,
    progress: Progress | None,
    after_save: Callable[[ImportOutcome], None] | None,
) -> ImportOutcome:
    try:
        with transaction.atomic():
            with _index_lookups():
                for chunk in chunks:
                    _count(chunk, outcome, on_problems)
                    # Once a row is invalid in all-or-nothing mode nothing will be kept: the rest of the
                    # file is only read to report every problem.
                    if only_valid or not outcome.invalid:
                        outcome.created += writer.write([row for row in chunk if not row.blocked])
                    if progress:
                        progress(outcome.rows)
            if outcome.invalid and not only_valid:
                raise ImportRejected(outcome)
            outcome.saved = True
            if after_save:
                after_save(outcome)
    except IntegrityError:
        raise ImportConflict(
            "Another record with one of these KYC reference numbers was saved meanwhile; nothing was "
            "imported. Check the file again."
        ) from None
    return outcome


def _count(chunk: list[PreparedRow], outcome: ImportOutcome, on_problems: ProblemSink | None) -> None:
    for row in chunk:
        outcome.rows += 1
        if row.blocked:
            outcome.invalid += 1
        else:
            outcome.valid += 1
        for problem in row.problems:
            if problem.is_error:
                outcome.errors += 1
            else:
                outcome.warnings += 1
        if row.problems and on_problems:
            on_problems(row.number, row.problems)


class _Writer:
    """Writes prepared rows as KycRecords plus their RecordEvents, as record_create (+ record_submit)."""

    def __init__(
        self, *, actor: User, default_branch: Branch, branches: dict[str, int], submit: bool
    ) -> None:
        self.actor = actor
        self.default_branch_id = default_branch.pk
        self.branches = branches
        self.submit = submit
        self.now = timezone.now()
        self.institutions = {
            b.pk: b.institution
            for b in Branch.objects.filter(pk__in=[default_branch.pk, *branches.values()]).select_related(
                "institution"
            )
        }
        self.lines: _RecordLines | None = None
        if connection.vendor == "postgresql":
            self.lines = _RecordLines(self)
            self.tokens = _CopyTable(RecordNameToken, ["record", "token_hash"], {})
            self.events = [
                _CopyTable(RecordEvent, ["record"], {k: v for k, v in event.items() if k != "record"})
                for event in self._events(0)
            ]

    def _fixed(self) -> dict[str, Any]:
        """Workflow fields every imported record gets (record_create, then record_submit if asked)."""
        fixed: dict[str, Any] = {
            "created_by": self.actor.pk,
            "status": Status.DRAFT,
            "created_at": self.now,
            "updated_at": self.now,
        }
        if self.submit:
            fixed.update(
                status=Status.SUBMITTED, submitted_by=self.actor.pk, submitted_at=self.now, return_reason=""
            )
        return fixed

    def _events(self, record_id: int) -> Iterator[dict[str, Any]]:
        base = {"record": record_id, "actor": self.actor.pk, "reason": "", "created_at": self.now}
        yield {**base, "action": RecordEvent.Action.CREATED, "from_status": "", "to_status": Status.DRAFT}
        if self.submit:
            yield {
                **base,
                "action": RecordEvent.Action.SUBMITTED,
                "from_status": Status.DRAFT,
                "to_status": Status.SUBMITTED,
            }

    def branch_id(self, row: PreparedRow) -> int:
        # A code not among the actor's branches blocks the row (_Scan.finish): its line is never written.
        return self.branches.get(row.branch_code, self.default_branch_id)

    def due(self, branch_id: int, verified_on: date | None) -> date | None:
        return due_on(
            institution=self.institutions[branch_id], verified_on=verified_on, updates_existing=False
        )

    def write(self, rows: list[PreparedRow]) -> int:
        if not rows:
            return 0
        if self.lines is not None:
            return self._copy(rows)
        fixed = self._fixed()
        records = []
        for row in rows:
            branch_id = self.branch_id(row)
            due = self.due(branch_id, row.values.get("kyc_verification_date"))
            records.append({**row.values, **fixed, "branch": branch_id, "upload_due_on": due})
        objects = KycRecord.objects.bulk_create(
            KycRecord(**{_attname(KycRecord, k): v for k, v in values.items()}) for values in records
        )
        ids = [obj.pk for obj in objects]
        RecordNameToken.objects.bulk_create(
            RecordNameToken(record_id=pk, token_hash=token)
            for pk, values in zip(ids, records, strict=True)
            for token in sorted(
                name_tokens(f"{values['applicant_first_name']} {values['applicant_middle_name']}")
            )
        )
        # Every creation event first, then every submission: ordered by (created_at, id) as in the services.
        events = [event for pk in ids for event in self._events(pk) if event["action"] == "created"]
        events += [event for pk in ids for event in self._events(pk) if event["action"] == "submitted"]
        RecordEvent.objects.bulk_create(
            RecordEvent(**{_attname(RecordEvent, k): v for k, v in event.items()}) for event in events
        )
        return len(ids)

    def _copy(self, rows: list[PreparedRow]) -> int:
        """COPY of the lines the stage prepared: ids first drawn from the records' own sequence, so that
        tokens and events can point at their records."""
        assert self.lines is not None
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [KycRecord._meta.db_table, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            self.lines.table.copy(
                cursor, "".join(f"{pk}\t{row.line}" for pk, row in zip(ids, rows, strict=True))
            )
            suffix = self.tokens.suffix
            self.tokens.copy(
                cursor,
                "".join(
                    f"{pk}\t{token}{suffix}"
                    for pk, row in zip(ids, rows, strict=True)
                    for token in row.tokens
                ),
            )
            # Every creation event first, then every submission: ordered by (created_at, id) as in the
            # services.
            for events in self.events:
                suffix = events.suffix
                events.copy(cursor, "".join(f"{pk}{suffix}" for pk in ids))
        return len(ids)


def _attname(model: type[Any], name: str) -> str:
    return str(model._meta.get_field(name).attname)


# COPY's text format: these characters are written as backslash escapes, NULL as \N.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r\x08\x0b\x0c]")
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x08": "\\b", "\x0b": "\\v", "\x0c": "\\f"}
)


def _copy_text(value: Any) -> str:
    """A value as a column of a COPY text line, as psycopg's write_row would send it."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, date):  # datetimes too (aware: they keep their offset)
        return value.isoformat()
    return _copy_text(str(value))


def _copy_field(field: Field[Any, Any], value: Any) -> str:
    """A model field's value prepared as for an INSERT, as a COPY column."""
    if isinstance(field, EncryptedTextField):
        return _copy_text(field.get_prep_value(value))
    if field.get_internal_type() == "JSONField":
        return _copy_text(json.dumps(value))
    return _copy_text(value)


class _CopyTable:
    """COPY into a model's table of lines whose first columns (``varying``) each row gives; every other
    column is the same for the whole import (``constants``, else the field's default, so a field added to
    the model later needs no change here), formatted once as the lines' ``suffix``."""

    def __init__(
        self, model: type[Any], varying: list[str], constants: dict[str, Any], *, with_pk: bool = False
    ) -> None:
        fields: list[Field[Any, Any]] = [f for f in model._meta.concrete_fields if not f.primary_key]
        by_name = {f.name: f for f in fields}
        rest = [f for f in fields if f.name not in varying]
        values = []
        for f in rest:
            if f.name in constants:
                values.append(_copy_field(f, constants[f.name]))
            else:
                assert not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)), f.name
                values.append(_copy_field(f, f.get_default()))
        self.suffix = "".join(f"\t{value}" for value in values) + "\n"
        quote = connection.ops.quote_name
        pk = [model._meta.pk.column] if with_pk else []
        columns = [*pk, *(by_name[name].column for name in varying), *(f.column for f in rest)]
        self.sql = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
        self.fields = [by_name[name] for name in varying]

    def copy(self, cursor: Any, text: str) -> None:
        if text:
            with cursor.cursor.copy(self.sql) as copy:
                copy.write(text)


_ENCRYPTED, _ENCRYPTED_OTHER, _PLAIN = 1, 2, 3


class _RecordLines:
    """Records as COPY lines without their ids, made by the stage (in the workers): the file's fields,
    encrypted as the model's fields encrypt them, the PAN's hash, branch and deadline, then the workflow
    fields every imported record shares."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        varying = [*FIELDS, "pan_hash", "branch", "upload_due_on"]
        self.table = _CopyTable(KycRecord, varying, writer._fixed(), with_pk=True)
        self.kinds = []
        for f in self.table.fields:
            if type(f) is EncryptedTextField:
                kind = _ENCRYPTED
            elif isinstance(f, EncryptedTextField):
                kind = _ENCRYPTED_OTHER  # a date: the field makes its text
            else:
                assert f.get_internal_type() != "JSONField", f.name
                kind = _PLAIN
            self.kinds.append((f.name, f, kind))

    def format(self, row: PreparedRow) -> tuple[str, tuple[str, ...]]:
        values = row.values
        branch_id = self.writer.branch_id(row)
        extra = {
            "pan_hash": row.pan_hash,
            "branch": branch_id,
            "upload_due_on": self.writer.due(branch_id, values.get("kyc_verification_date")),
        }
        parts: list[str] = []
        secret_at: list[int] = []
        secrets: list[str] = []
        text_at: list[int] = []
        for name, f, kind in self.kinds:
            value = values[name] if name in values else extra[name]
            if value.__class__ is str:  # nearly every column: checked for escapes once, below
                if kind is _ENCRYPTED and value:
                    secret_at.append(len(parts))
                    secrets.append(value)
                else:
                    text_at.append(len(parts))
                parts.append(value)
            elif kind is _PLAIN or value is None:
                parts.append(_copy_text(value))
            else:
                text = f.to_plain(value)  # type: ignore[attr-defined]
                if text:
                    secret_at.append(len(parts))
                    secrets.append(text)
                parts.append(_copy_text(text))
        if _COPY_SPECIAL.search("".join([parts[at] for at in text_at])):
            for at in text_at:  # a backslash (or worse) in some value
                parts[at] = _copy_text(parts[at])
        for at, sealed in zip(secret_at, crypto.encrypt_many(secrets), strict=True):
            parts[at] = sealed  # base64 and "v2:": nothing to escape
        tokens = tuple(
            sorted(name_tokens(f"{values['applicant_first_name']} {values['applicant_middle_name']}"))
        )
        return "\t".join(parts) + self.table.suffix, tokens


# --- jobs (the import pages) ------------------------------------------------------------------------


def _audit(actor: User | None, action: str, job: ImportJob, **detail: Any) -> None:
    AuditEvent.objects.create(
        actor=actor, action=action, object_type="ImportJob", object_id=str(job.pk), detail=detail
    )


def _job_move(job: ImportJob, to: str, **updates: Any) -> bool:
    """The one place a job's status changes: a conditional update (False when another process moved it)."""
    if to not in JOB_TRANSITIONS[job.status]:
        raise ValueError(f"An import that is {job.get_status_display().lower()} cannot do that.")
    moved = ImportJob.objects.filter(pk=job.pk, status=job.status).update(status=to, **updates)
    if moved:
        job.refresh_from_db()
    return bool(moved)


def _fernet() -> Any:
    return crypto._fernet()  # the field encryption's keys: the stored file is PII like any column


def import_job_create(*, actor: User, branch: Branch, upload: UploadedFile, submit: bool) -> ImportJob:
    """Store an uploaded file (encrypted, in the database) as a new import job; audited."""
    _require_maker(actor, branch)
    size = upload.size or 0
    if size > MAX_UPLOAD_BYTES:
        raise FileRefused(
            f"The file is {size / 1024 / 1024:.0f} MB; uploads are limited to "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB. Split it, or ask for it to be imported with "
            "manage.py import_records."
        )
    name = (upload.name or "upload").rsplit("/", 1)[-1][:200]
    upload.seek(0)
    kind = detect_format(upload.read(8192), name)
    upload.seek(0)
    imports_purge_expired()
    with transaction.atomic():
        job = ImportJob.objects.create(
            branch=branch, created_by=actor, filename=name, file_format=kind, file_size=size, submit=submit
        )
        fernet = _fernet()
        seq = 0
        while True:
            data = upload.read(FILE_CHUNK_BYTES)
            if not data:
                break
            ImportFileChunk.objects.create(job=job, seq=seq, data=fernet.encrypt(data))
            seq += 1
        _audit(actor, "import_uploaded", job, branch=branch.code, size=size, format=kind, submit=submit)
    return job


class _ChunkStream(io.RawIOBase):
    """The stored file, decrypted one chunk at a time as it is read."""

    def __init__(self, job_id: int) -> None:
        self.ids = iter(list(ImportFileChunk.objects.filter(job_id=job_id).values_list("pk", flat=True)))
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer:
            pk = next(self.ids, None)
            if pk is None:
                return 0
            token = ImportFileChunk.objects.values_list("data", flat=True).get(pk=pk)
            self.buffer = _fernet().decrypt(bytes(token))
        n = min(len(target), len(self.buffer))
        target[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


def job_opener(job: ImportJob) -> Opener:
    if job.file_deleted_at is not None:
        raise FileRefused("The uploaded file was deleted (imports keep it for a day). Upload it again.")

    def opener() -> IO[bytes]:
        return io.BufferedReader(_ChunkStream(job.pk), buffer_size=FILE_CHUNK_BYTES)

    return opener


class _ProblemStore:
    """Buffers problems and writes them in bulk (at most MAX_STORED_PROBLEMS)."""

    def __init__(self, job: ImportJob, *, warnings_block: bool) -> None:
        self.job = job
        self.warnings_block = warnings_block
        self.buffer: list[ImportProblem] = []
        self.stored = 0

    def __call__(self, row: int, problems: list[Problem]) -> None:
        for p in problems:
            if self.stored >= MAX_STORED_PROBLEMS:
                return
            # Where warnings block, they are errors for this institution: stored as such.
            severity = "error" if (p.is_error or self.warnings_block) else "warning"
            self.buffer.append(
                ImportProblem(job=self.job, row=row, field=p.field[:80], message=p.message, severity=severity)
            )
            self.stored += 1
        if len(self.buffer) >= 5_000:
            self.flush()

    def flush(self) -> None:
        ImportProblem.objects.bulk_create(self.buffer)
        self.buffer = []


class _ProgressReporter:
    """Writes rows_done (and renews the lease) on a connection of its own, so that the progress bar moves
    while the import's own transaction is still open. Inside an outer transaction (tests) it stays quiet,
    and on SQLite (`make run`) too: there a second connection cannot write while the import holds the
    database's only write lock, so the bar shows the job as running until it is done."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.quiet = connection.in_atomic_block or connection.vendor == "sqlite"
        self.pool = None if self.quiet else ThreadPoolExecutor(max_workers=1)
        self.lock = threading.Lock()

    def __call__(self, done: int) -> None:
        if self.pool is not None:
            self.pool.submit(self._write, done).result()

    def _write(self, done: int) -> None:
        ImportJob.objects.filter(pk=self.job_id).update(
            rows_done=done, lease_expires_at=timezone.now() + timedelta(seconds=LEASE_SECONDS)
        )

    def close(self) -> None:
        if self.pool is not None:
            self.pool.submit(connections.close_all).result()
            self.pool.shutdown()


def _claim(job: ImportJob, status: str) -> bool:
    """Take a queued or abandoned (lease expired) job in ``status``; False when another worker has it."""
    now = timezone.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    free = ImportJob.objects.filter(pk=job.pk, status=status)
    free = free.filter(lease_expires_at__isnull=True) | free.filter(lease_expires_at__lt=now)
    return bool(ImportJob.objects.filter(pk__in=free.values("pk")).update(lease_expires_at=lease))


def import_job_queue_check(*, job: ImportJob) -> ImportJob:
    """Mark an uploaded job as being checked (the check itself is import_job_check)."""
    _job_move(job, JobStatus.CHECKING, lease_expires_at=None, rows_done=0)
    return job


def import_job_check(*, job_id: int) -> ImportJob:
    """Dry run of a job's file: every problem stored by row and column, nothing imported. Safe to run
    twice: a job being checked by a live worker is left alone, a finished check is not redone."""
    job = ImportJob.objects.select_related("branch__institution", "created_by").get(pk=job_id)
    if job.status != JobStatus.CHECKING or not _claim(job, JobStatus.CHECKING):
        return job
    ImportProblem.objects.filter(job=job).delete()
    store = _ProblemStore(job, warnings_block=job.branch.institution.warnings_block)
    reporter = _ProgressReporter(job.pk)
    try:
        outcome = records_import(
            actor=job.created_by,
            branch=job.branch,
            opener=job_opener(job),
            filename=job.filename,
            save=False,
            on_problems=store,
            progress=reporter,
        )
    except (FileRefused, PermissionDenied) as exc:
        ImportProblem.objects.filter(job=job).delete()
        with transaction.atomic():
            _job_move(job, JobStatus.REFUSED, message=str(exc), checked_at=timezone.now())
            _audit(job.created_by, "import_refused", job, reason=str(exc))
        return job
    finally:
        reporter.close()
    store.flush()
    with transaction.atomic():
        _job_move(
            job,
            JobStatus.CHECKED,
            rows_total=outcome.rows,
            rows_valid=outcome.valid,
            rows_invalid=outcome.invalid,
            warnings=outcome.warnings,
            rows_done=outcome.rows,
            checked_at=timezone.now(),
            message="",
        )
        _audit(job.created_by, "import_checked", job, rows=outcome.rows, invalid=outcome.invalid)
    return job


def import_job_confirm(*, actor: User, job: ImportJob, mode: str) -> ImportJob:
    """The maker confirms the import after the preview: all rows, or only the valid ones."""
    if actor.pk != job.created_by_id:
        raise PermissionDenied("Only who uploaded the file may import it.")
    if mode not in ImportJob.Mode.values:
        raise ValueError("Choose whether to import all records or only the valid ones.")
    if mode == ImportJob.Mode.ALL and job.rows_invalid:
        raise ValueError("Some rows are invalid: fix them, or import only the valid rows.")
    if job.rows_valid == 0:
        raise ValueError("No row is valid: there is nothing to import.")
    with transaction.atomic():
        if not _job_move(job, JobStatus.IMPORTING, mode=mode, rows_done=0, lease_expires_at=None):
            raise ValueError("This import changed meanwhile. Reload the page.")
        _audit(actor, "import_confirmed", job, mode=mode, submit=job.submit)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Import a confirmed job's file in one transaction. Safe to run twice: a job being imported by a
    live worker is left alone, and a finished job is not imported again."""
    job = ImportJob.objects.select_related("branch__institution", "created_by").get(pk=job_id)
    if job.status != JobStatus.IMPORTING or not _claim(job, JobStatus.IMPORTING):
        return job
    collected: list[tuple[int, list[Problem]]] = []
    kept = 0

    def collect(row: int, problems: list[Problem]) -> None:
        nonlocal kept
        if kept < MAX_STORED_PROBLEMS:
            collected.append((row, problems))
            kept += len(problems)

    def finish(outcome: ImportOutcome) -> None:
        # Inside the import's transaction: the records, their events and the job's outcome commit together.
        _job_move(
            job,
            JobStatus.IMPORTED,
            records_created=outcome.created,
            rows_done=outcome.rows,
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        _audit(
            job.created_by,
            "import_done",
            job,
            created=outcome.created,
            skipped=outcome.invalid,
            submitted=job.submit,
        )

    reporter = _ProgressReporter(job.pk)
    try:
        records_import(
            actor=job.created_by,
            branch=job.branch,
            opener=job_opener(job),
            filename=job.filename,
            save=True,
            only_valid=job.mode == ImportJob.Mode.VALID,
            submit=job.submit,
            on_problems=collect,
            progress=reporter,
            after_save=finish,
        )
    except (FileRefused, ImportRejected, ImportConflict, PermissionDenied, DatabaseError) as exc:
        reporter.close()
        if isinstance(exc, DatabaseError):
            # Never the database's own text: it may quote a value of the file.
            exc = ImportConflict(
                f"The database refused the rows ({type(exc).__name__}); nothing was imported."
            )
        job.refresh_from_db()  # the transaction was rolled back: the job is still importing
        with transaction.atomic():
            ImportProblem.objects.filter(job=job).delete()
            store = _ProblemStore(job, warnings_block=job.branch.institution.warnings_block)
            for row, problems in collected:
                store(row, problems)
            store.flush()
            outcome = exc.outcome if isinstance(exc, ImportRejected) else None
            _job_move(
                job,
                JobStatus.FAILED,
                message=str(exc),
                finished_at=timezone.now(),
                lease_expires_at=None,
                **(
                    {"rows_valid": outcome.valid, "rows_invalid": outcome.invalid, "rows_total": outcome.rows}
                    if outcome
                    else {}
                ),
            )
            _audit(job.created_by, "import_failed", job, reason=str(exc))
        return job
    reporter.close()
    return job


def import_job_discard(*, actor: User, job: ImportJob) -> ImportJob:
    """Delete the job's stored file and problems (records already imported stay); audited."""
    if actor.pk != job.created_by_id:
        raise PermissionDenied("Only who uploaded the file may discard it.")
    with transaction.atomic():
        if not _job_move(job, JobStatus.DISCARDED, file_deleted_at=timezone.now()):
            raise ValueError("This import changed meanwhile. Reload the page.")
        ImportFileChunk.objects.filter(job=job).delete()
        ImportProblem.objects.filter(job=job).delete()
        _audit(actor, "import_discarded", job)
    return job


def imports_purge_expired(*, now: datetime | None = None) -> int:
    """Delete the stored files of jobs uploaded more than IMPORT_FILE_KEEP_HOURS ago (not running ones)."""
    cutoff = (now or timezone.now()) - timedelta(hours=IMPORT_FILE_KEEP_HOURS)
    jobs = ImportJob.objects.filter(created_at__lt=cutoff, file_deleted_at__isnull=True).exclude(
        status__in=[JobStatus.CHECKING, JobStatus.IMPORTING]
    )
    ids = list(jobs.values_list("pk", flat=True))
    if not ids:
        return 0
    with transaction.atomic():
        ImportFileChunk.objects.filter(job_id__in=ids).delete()
        ImportJob.objects.filter(pk__in=ids).update(file_deleted_at=timezone.now())
        AuditEvent.objects.bulk_create(
            AuditEvent(action="import_file_purged", object_type="ImportJob", object_id=str(pk)) for pk in ids
        )
    return len(ids)


# --- exports ------------------------------------------------------------------------------------------


def records_export_audit(
    *, actor: User, unmasked: bool, file_format: str, filters: dict[str, str], count: int
) -> None:
    """Audit an export; an export with personal data unmasked needs the permission to reveal it."""
    if unmasked and not actor.can_reveal_pii:
        raise PermissionDenied("Your role sees personal data masked.")
    AuditEvent.objects.create(
        actor=actor,
        action="records_exported_unmasked" if unmasked else "records_exported",
        object_type="KycRecord",
        detail={"format": file_format, "filters": filters, "records": count},
    )
