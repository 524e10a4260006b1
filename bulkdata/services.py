"""Bulk import: every write, each owning its transaction and its audit.

``records_import`` is the engine the command, the pages and the benchmark share. It streams the file in
chunks of CHUNK_ROWS: each row is converted, cleaned and validated exactly as ``records.services`` would
(bulkdata.rows), checked for duplicates in the file and in the database, and, when saving, written with
COPY (PostgreSQL) or bulk_create (elsewhere) together with the same RecordEvents the single-record
services write. Saving is one transaction: all or nothing, or only the valid rows when asked.
"""

from __future__ import annotations

import io
import json
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Field
from django.db.models.functions import Upper
from django.utils import timezone

from ckycportal import crypto
from ckycportal.fields import EncryptedDateField, EncryptedTextField
from codelists.selectors import code_book
from institutions.models import AuditEvent, Branch, Role, User
from records.models import KycRecord, RecordEvent, RecordNameToken, Status
from records.services import due_on, name_tokens
from records.validation import Problem

from .models import JOB_TRANSITIONS, ImportFileChunk, ImportJob, ImportProblem, JobStatus
from .parsers import MAX_UPLOAD_BYTES, FileRefused, Opener, RawRow, detect_format, read_rows
from .rows import PreparedRow, blocks, prepare

CHUNK_ROWS = 2_000
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
            pan = row.values["pan"]
            row.values["pan_hash"] = crypto.keyed_hash(pan) if pan else ""
            if pan and "pan" not in failed:
                key = int(row.values["pan_hash"][:16], 16)
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
                hashes.setdefault(row.values["pan_hash"], []).append(row)
        if refs:
            taken = KycRecord.objects.annotate(ref_upper=Upper("kyc_ref_no")).filter(ref_upper__in=list(refs))
            for ref in taken.values_list("ref_upper", flat=True):
                refs[ref].problems.append(
                    Problem(
                        "kyc_ref_no",
                        "Another record already has this KYC reference number (ignoring case); each must "
                        "be unique",
                    )
                )
        if hashes:
            existing = KycRecord.objects.filter(pan_hash__in=list(hashes)).values_list(
                "pan_hash", "kyc_ref_no", "branch_id"
            )
            for pan_hash, ref, branch_id in existing:
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


def _chunks(rows: Iterable[RawRow], scan: _Scan) -> Iterator[list[PreparedRow]]:
    today = timezone.localdate()
    codes = code_book()  # the admin-edited code lists and PIN master, once for the whole file
    chunk: list[PreparedRow] = []
    for raw in rows:
        chunk.append(prepare(raw, today=today, warnings_block=scan.warnings_block, codes=codes))
        if len(chunk) >= CHUNK_ROWS:
            yield scan.finish(chunk)
            chunk = []
    if chunk:
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
    chunks = _chunks(read_rows(opener, filename), scan)
    if not save:
        for chunk in chunks:
            _count(chunk, outcome, on_problems)
            if progress:
                progress(outcome.rows)
        return outcome
    writer = _Writer(actor=actor, default_branch=branch, branches=scan.branches, submit=submit)
    try:
        with transaction.atomic():
            for chunk in chunks:
                _count(chunk, outcome, on_problems)
                # Once a row is invalid in all-or-nothing mode nothing will be kept: the rest of the file
                # is only read to report every problem.
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
        self.fast = connection.vendor == "postgresql"
        if self.fast:
            self.record_columns = _Columns(KycRecord)
            self.event_columns = _Columns(RecordEvent)
            self.token_columns = _Columns(RecordNameToken)

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

    def write(self, rows: list[PreparedRow]) -> int:
        if not rows:
            return 0
        fixed = self._fixed()
        records = []
        for row in rows:
            branch_id = self.branches[row.branch_code] if row.branch_code else self.default_branch_id
            due = due_on(
                institution=self.institutions[branch_id],
                verified_on=row.values.get("kyc_verification_date"),
                updates_existing=False,
            )
            records.append({**row.values, **fixed, "branch": branch_id, "upload_due_on": due})
        if self.fast:
            ids = self.record_columns.copy(records)
        else:
            objects = KycRecord.objects.bulk_create(
                KycRecord(**{_attname(KycRecord, k): v for k, v in values.items()}) for values in records
            )
            ids = [obj.pk for obj in objects]
        tokens: list[dict[str, Any]] = [
            {"record": pk, "token_hash": token}
            for pk, values in zip(ids, records, strict=True)
            for token in sorted(
                name_tokens(f"{values['applicant_first_name']} {values['applicant_middle_name']}")
            )
        ]
        if self.fast:
            self.token_columns.copy(tokens)
        else:
            RecordNameToken.objects.bulk_create(
                RecordNameToken(record_id=t["record"], token_hash=t["token_hash"]) for t in tokens
            )
        # Every creation event first, then every submission: ordered by (created_at, id) as in the services.
        events = [event for pk in ids for event in self._events(pk) if event["action"] == "created"]
        events += [event for pk in ids for event in self._events(pk) if event["action"] == "submitted"]
        if self.fast:
            self.event_columns.copy(events)
        else:
            RecordEvent.objects.bulk_create(
                RecordEvent(**{_attname(RecordEvent, k): v for k, v in event.items()}) for event in events
            )
        return len(ids)


def _encrypt_text(value: Any) -> Any:
    """EncryptedTextField.get_prep_value for the text the import produces (str), without its detours."""
    if isinstance(value, str):
        return crypto.encrypt(value) if value else value
    return value if value is None else crypto.encrypt(str(value))


def _attname(model: type[Any], name: str) -> str:
    return str(model._meta.get_field(name).attname)


class _Columns:
    """COPY of rows into a model's table, each column prepared as the model field would for an INSERT.

    Ids are drawn from the table's own sequence first, so events can point at their records. A column
    not given gets the field's default (a field added to the model later needs no change here).
    """

    def __init__(self, model: type[Any]) -> None:
        self.model = model
        fields: list[Field[Any, Any]] = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.table = model._meta.db_table
        self.fields = fields
        self.defaults = {f.name: f.get_default() for f in fields}
        for f in fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                self.defaults[f.name] = None  # filled in by the caller
        self.prep: list[tuple[str, Callable[[Any], Any] | None]] = []
        for f in fields:
            if isinstance(f, EncryptedDateField):
                self.prep.append((f.name, f.get_prep_value))  # the field's own encryption
            elif isinstance(f, EncryptedTextField):
                self.prep.append((f.name, _encrypt_text))
            elif f.get_internal_type() == "JSONField":
                self.prep.append((f.name, json.dumps))
            else:
                self.prep.append((f.name, None))
        pk = model._meta.pk
        self.pk_column = pk.column
        self.sql = "COPY {} ({}) FROM STDIN".format(
            connection.ops.quote_name(self.table),
            ", ".join(connection.ops.quote_name(c) for c in [pk.column, *(f.column for f in fields)]),
        )

    def copy(self, rows: list[dict[str, Any]]) -> list[int]:
        # Django's error classes (IntegrityError, ...) for psycopg's, as for any query through the ORM.
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [self.table, self.pk_column, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            defaults = self.defaults
            prep = self.prep
            with cursor.cursor.copy(self.sql) as copy:
                for pk, values in zip(ids, rows, strict=True):
                    line: list[Any] = [pk]
                    for name, convert in prep:
                        value = values[name] if name in values else defaults[name]
                        if convert is not None and value is not None:
                            value = convert(value)
                        line.append(value)
                    copy.write_row(line)
        return ids


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
