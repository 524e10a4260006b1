"""Import jobs, the import pages' services: each write owns its transaction and its audit.

A job is an uploaded file stored encrypted in the database, then checked (every problem stored by row),
confirmed by its maker and imported by the engine (bulkdata.engine); its status moves only through
``_job_move``, and a worker holds it by a lease so that a repeated task does nothing. A small file is
checked and imported within the request; a larger one, and every workbook (untrusted XML in a zip), by a
worker, whose task these services queue once the transaction commits. Stored files are purged a day after
upload, and a check or import that never finishes is failed and its file purged. Refusals are
``PortalError``s.
"""

from __future__ import annotations

import functools
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from ckycportal import crypto
from ckycportal.errors import ActionRefused
from ckycportal.logging import redact
from institutions.models import AuditEvent, Branch, User
from records.masking import mask_value
from records.validation import Problem

from .engine import ImportConflict, ImportOutcome, ImportRejected, records_import, require_maker
from .models import JOB_TRANSITIONS, RUNNING, ImportFileChunk, ImportJob, ImportProblem, JobStatus
from .parsers import MAX_UPLOAD_BYTES, XLSX, FileRefused, Opener, detect_format

FILE_CHUNK_BYTES = 1024 * 1024
IMPORT_FILE_KEEP_HOURS = 24
LEASE_SECONDS = 600
# Problems kept for the preview page and the error file; beyond this only counted (the message says so).
MAX_STORED_PROBLEMS = 200_000
# Files up to this size (settings.IMPORT_SYNC_MAX_BYTES overrides it) are checked and imported within the
# request, in a few seconds at most; larger ones by a Celery worker while the page shows a progress bar.
SYNC_MAX_BYTES_DEFAULT = 256 * 1024


def _audit(actor: User | None, action: str, job: ImportJob, **detail: Any) -> None:
    AuditEvent.objects.create(
        actor=actor, action=action, object_type="ImportJob", object_id=str(job.pk), detail=detail
    )


def _job_move(job: ImportJob, to: str, *, where: Q | None = None, **updates: Any) -> bool:
    """The one place a job's status changes: a conditional update (False when another process moved it,
    or the job no longer matches ``where``)."""
    if to not in JOB_TRANSITIONS[job.status]:
        raise ActionRefused(f"An import that is {job.get_status_display().lower()} cannot do that.")
    current = ImportJob.objects.filter(pk=job.pk, status=job.status)
    if where is not None:
        current = current.filter(where)
    moved = current.update(status=to, **updates)
    if moved:
        job.refresh_from_db()
    return bool(moved)


def _in_request(job: ImportJob) -> bool:
    """Whether the job's file is small enough to be checked and imported within the request. A workbook
    never is: parsing its XML stays off the request path, whatever its size."""
    if job.file_format == XLSX:
        return False
    return job.file_size <= getattr(settings, "IMPORT_SYNC_MAX_BYTES", SYNC_MAX_BYTES_DEFAULT)


def _queue_check(job_id: int) -> None:
    from . import tasks  # imported here: the tasks import these services

    tasks.import_job_check.delay(job_id)


def _queue_run(job_id: int) -> None:
    from . import tasks  # imported here: the tasks import these services

    tasks.import_job_run.delay(job_id)


def _fernet() -> Any:
    return crypto._fernet()  # the field encryption's keys: the stored file is PII like any column


def import_job_create(*, actor: User, branch: Branch, upload: UploadedFile, submit: bool) -> ImportJob:
    """Store an uploaded file (encrypted, in the database) as a new import job; audited."""
    require_maker(actor, branch)
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


def import_job_start_check(*, job: ImportJob) -> ImportJob:
    """Mark an uploaded job as being checked, then check it (import_job_check): within this request when
    the file is small, else by a worker, whose task is queued once the transaction commits."""
    _job_move(job, JobStatus.CHECKING, lease_expires_at=None, rows_done=0, started_at=timezone.now())
    if _in_request(job):
        return import_job_check(job_id=job.pk)
    transaction.on_commit(functools.partial(_queue_check, job.pk))
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
    """The maker confirms the import after the preview: all rows, or only the valid ones. The import
    (import_job_run) then runs within this request when the file is small, else by a worker, whose task is
    queued once the transaction commits."""
    if actor.pk != job.created_by_id:
        raise PermissionDenied("Only who uploaded the file may import it.")
    if mode not in ImportJob.Mode.values:
        raise ActionRefused("Choose whether to import all records or only the valid ones.")
    if mode == ImportJob.Mode.ALL and job.rows_invalid:
        raise ActionRefused("Some rows are invalid: fix them, or import only the valid rows.")
    if job.rows_valid == 0:
        raise ActionRefused("No row is valid: there is nothing to import.")
    with transaction.atomic():
        if not _job_move(
            job,
            JobStatus.IMPORTING,
            mode=mode,
            rows_done=0,
            lease_expires_at=None,
            started_at=timezone.now(),
        ):
            raise ActionRefused("This import changed meanwhile. Reload the page.")
        _audit(actor, "import_confirmed", job, mode=mode, submit=job.submit)
    if _in_request(job):
        return import_job_run(job_id=job.pk)
    transaction.on_commit(functools.partial(_queue_run, job.pk))
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
        # Inside the import's transaction: the records, their events and the job's outcome commit together;
        # a job the sweep failed meanwhile (imports_fail_stuck) rolls the records back.
        if not _job_move(
            job,
            JobStatus.IMPORTED,
            records_created=outcome.created,
            rows_done=outcome.rows,
            finished_at=timezone.now(),
            lease_expires_at=None,
        ):
            raise ImportConflict("This import was stopped meanwhile; nothing was imported.")
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
        if job.status != JobStatus.IMPORTING:
            return job  # failed by the sweep meanwhile, which said why
        with transaction.atomic():
            ImportProblem.objects.filter(job=job).delete()
            store = _ProblemStore(job, warnings_block=job.branch.institution.warnings_block)
            for row, problems in collected:
                store(row, problems)
            store.flush()
            outcome = exc.outcome if isinstance(exc, ImportRejected) else None
            counts: dict[str, Any] = (
                {"rows_valid": outcome.valid, "rows_invalid": outcome.invalid, "rows_total": outcome.rows}
                if outcome
                else {}
            )
            _job_move(
                job,
                JobStatus.FAILED,
                message=str(exc),
                finished_at=timezone.now(),
                lease_expires_at=None,
                **counts,
            )
            _audit(job.created_by, "import_failed", job, reason=str(exc))
        return job
    reporter.close()
    return job


def import_job_retry(*, job: ImportJob) -> ImportJob:
    """Queue again the task of a job whose worker stopped (its lease ran out), once the transaction
    commits; the task's claim decides whether it runs, so a job a live worker holds is left alone."""
    if job.status == JobStatus.CHECKING:
        transaction.on_commit(functools.partial(_queue_check, job.pk))
    elif job.status == JobStatus.IMPORTING:
        transaction.on_commit(functools.partial(_queue_run, job.pk))
    return job


def import_job_discard(*, actor: User, job: ImportJob) -> ImportJob:
    """Delete the job's stored file and problems (records already imported stay); audited."""
    if actor.pk != job.created_by_id:
        raise PermissionDenied("Only who uploaded the file may discard it.")
    with transaction.atomic():
        if not _job_move(job, JobStatus.DISCARDED, file_deleted_at=timezone.now()):
            raise ActionRefused("This import changed meanwhile. Reload the page.")
        ImportFileChunk.objects.filter(job=job).delete()
        ImportProblem.objects.filter(job=job).delete()
        _audit(actor, "import_discarded", job)
    return job


def imports_fail_stuck(*, now: datetime | None = None) -> int:
    """Fail each check or import started more than IMPORT_JOB_TIMEOUT_SECONDS ago whose worker no longer
    holds it (its lease is over or it was never taken), and delete its file; audited. Safe to run twice."""
    now = now or timezone.now()
    timeout = settings.IMPORT_JOB_TIMEOUT_SECONDS
    started = Coalesce("started_at", "created_at")
    unheld = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    stuck = ImportJob.objects.alias(started=started).filter(
        unheld, status__in=RUNNING, started__lt=now - timedelta(seconds=timeout)
    )
    failed = 0
    for job in stuck:
        minutes = timeout // 60
        step = "check" if job.status == JobStatus.CHECKING else "import"
        with transaction.atomic():
            # Conditional on the status and the lease: a worker that took the job meanwhile keeps it.
            if not _job_move(
                job,
                JobStatus.FAILED,
                where=unheld,
                message=f"The {step} did not finish within {minutes} minutes; nothing was saved. The "
                "uploaded file was deleted: upload it again.",
                finished_at=now,
                lease_expires_at=None,
                file_deleted_at=now,
            ):
                continue
            ImportFileChunk.objects.filter(job=job).delete()
            ImportProblem.objects.filter(job=job).delete()
            _audit(None, "import_timed_out", job, step=step, timeout_seconds=timeout)
        failed += 1
    return failed


def imports_purge_expired(*, now: datetime | None = None) -> int:
    """Fail stuck jobs (imports_fail_stuck) and delete the stored files of jobs uploaded more than
    IMPORT_FILE_KEEP_HOURS ago (not running ones); the number of files deleted. Safe to run twice."""
    failed = imports_fail_stuck(now=now)
    cutoff = (now or timezone.now()) - timedelta(hours=IMPORT_FILE_KEEP_HOURS)
    jobs = ImportJob.objects.filter(created_at__lt=cutoff, file_deleted_at__isnull=True).exclude(
        status__in=[JobStatus.CHECKING, JobStatus.IMPORTING]
    )
    ids = list(jobs.values_list("pk", flat=True))
    if not ids:
        return failed
    with transaction.atomic():
        ImportFileChunk.objects.filter(job_id__in=ids).delete()
        ImportJob.objects.filter(pk__in=ids).update(file_deleted_at=timezone.now())
        AuditEvent.objects.bulk_create(
            AuditEvent(action="import_file_purged", object_type="ImportJob", object_id=str(pk)) for pk in ids
        )
    return failed + len(ids)


# --- exports ------------------------------------------------------------------------------------------


def search_term_masked(term: str, by: str = "") -> str:
    """A search term as the audit log keeps it: identifiers masked by the log filter's rule, names too.

    A term with no digit searched as a name (or as anything) is taken for a name and masked like one.
    """
    if by in ("name", "", "auto") and not any(char.isdigit() for char in term):
        return str(mask_value("applicant_first_name", term))
    return redact(term)


def records_export_audit(
    *,
    actor: User,
    unmasked: bool,
    file_format: str,
    filters: dict[str, str],
    count: int,
    second_factor: str = "",
) -> None:
    """Audit an export; an export with personal data unmasked needs the permission to reveal it and a
    passed second factor (``second_factor``: the verified device's persistent id, kept in the event)."""
    if unmasked and not actor.can_reveal_pii:
        raise PermissionDenied("Your role sees personal data masked.")
    if unmasked and not second_factor:
        raise PermissionDenied("Personal data in clear needs two-factor authentication.")
    if filters.get("q"):
        filters = {**filters, "q": search_term_masked(filters["q"], filters.get("by", ""))}
    AuditEvent.objects.create(
        actor=actor,
        action="records_exported_unmasked" if unmasked else "records_exported",
        object_type="KycRecord",
        detail={
            "format": file_format,
            "filters": filters,
            "records": count,
            **({"second_factor": second_factor} if unmasked else {}),
        },
    )
