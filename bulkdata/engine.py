"""The import engine: a file of records read, checked and, when asked, imported, all or nothing.

``records_import`` is what the command, the import jobs and the benchmark share. It streams the file in
chunks of CHUNK_ROWS: each row is converted, cleaned and validated exactly as ``records.services`` would
(bulkdata.rows), checked for duplicates in the file and in the database, and, when saving, handed to the
writer (bulkdata.copy). Saving is one transaction: all or nothing, or only the valid rows when asked. On
PostgreSQL a file longer than one chunk has its rows prepared (validated, hashed and, for COPY, encrypted
and formatted) by worker processes, a few chunks ahead, while this process checks duplicates and
PostgreSQL writes the chunks before, so that the per-row Python work and the database's index maintenance
use different cores; chunks still come back in file order, so row numbers, problems and progress do not
depend on the workers.
"""

from __future__ import annotations

import multiprocessing
import os
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Upper
from django.utils import timezone

from ckycportal import crypto
from ckycportal.errors import PortalError
from codelists.codes import CodeBook
from codelists.selectors import code_book
from institutions.models import Branch, Role, User
from records.models import KycRecord
from records.validation import Problem

from .copy import RecordLines, RecordWriter
from .parsers import Opener, RawRow, read_rows
from .rows import PreparedRow, blocks, prepare

CHUNK_ROWS = 2_000
# Worker processes preparing rows (PostgreSQL only, files longer than one chunk; below 2 turns them off),
# and the chunks each may have waiting, which bounds the memory they hold. At most 4: this process and
# PostgreSQL, writing, keep up with only a few workers preparing rows, and more would only wait.
POOL_WORKERS = min(os.cpu_count() or 1, 4)
CHUNKS_AHEAD_PER_WORKER = 2

ProblemSink = Callable[[int, list[Problem]], None]
Progress = Callable[[int], None]


class ImportRejected(PortalError):
    """An all-or-nothing import met invalid rows: nothing was saved."""

    def __init__(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome
        super().__init__(
            f"{outcome.invalid} of {outcome.rows} rows are invalid; nothing was imported. "
            "Fix them, or import only the valid rows."
        )


class ImportConflict(PortalError):
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


def require_maker(actor: User, branch: Branch) -> None:
    """Only a maker imports, and only at a branch of theirs (PermissionDenied otherwise)."""
    if actor.role != Role.MAKER:
        raise PermissionDenied("Only compliance staff (makers) import KYC records.")
    if not actor.branches.filter(pk=branch.pk).exists():
        raise PermissionDenied("You do not work at this branch.")


class _FirstRows:
    """The first row of each key (a 63-bit hash), in flat arrays of 12 bytes a slot rather than a dict's
    Python objects, so that a million-row file's references and PANs stay small in memory.

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
                # Another branch's record is named by neither its reference nor its branch (deny by
                # default): only that it is elsewhere in the institution, so a duplicate is still caught.
                which = (
                    f"Another record ({ref})"
                    if branch_id in self.visible_branches
                    else "A record elsewhere in the institution"
                )
                for row in hashes[pan_hash]:
                    row.problems.append(
                        Problem(
                            "pan",
                            f"{which} has the same PAN: check that this is not the same customer twice",
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
        lines: RecordLines | None,
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


# Rows cross between the processes as plain tuples: they pickle much faster than the dataclasses.
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


# On PostgreSQL a chunk's values go as one array parameter: a placeholder for each of a chunk's rows
# costs more to build, send and plan than the index lookups themselves.
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
    require_maker(actor, branch)
    scan = _Scan(
        actor=actor,
        branch=branch,
        branches={b.code.upper(): b.pk for b in actor.branches.all()},
        visible_branches=set(actor.branches.values_list("pk", flat=True)),
        warnings_block=branch.institution.warnings_block,
    )
    outcome = ImportOutcome()
    writer = (
        RecordWriter(actor=actor, default_branch=branch, branches=scan.branches, submit=submit)
        if save
        else None
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
    whole table for each chunk, quadratic in the file, where each hash is one probe of record_pan_hash.
    set_config(..., true) lasts only to the end of the transaction, and a rollback of the import's
    savepoint undoes it; on success the previous value is put back here.
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
    writer: RecordWriter,
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
