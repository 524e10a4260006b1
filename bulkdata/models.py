"""An import from the pages: the uploaded file (encrypted, in the database), its check, its outcome.

The file lives in ImportFileChunk rows, Fernet-encrypted like every other PII column, never under the web
root or on a disk the web server and the worker would have to share; it is deleted when the job is
discarded and at the latest IMPORT_FILE_KEEP_HOURS after upload (the error file needs it until then).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from institutions.models import Branch


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded, waiting to be checked"
    CHECKING = "checking", "Being checked"
    CHECKED = "checked", "Checked: waiting for your confirmation"
    IMPORTING = "importing", "Being imported"
    IMPORTED = "imported", "Imported"
    REFUSED = "refused", "File refused"
    FAILED = "failed", "Import failed: nothing was saved"
    DISCARDED = "discarded", "Discarded"


# The only moves a job makes (bulkdata.services._job_move is the one place status changes).
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.UPLOADED: frozenset({JobStatus.CHECKING, JobStatus.DISCARDED}),
    # A check or an import that never finishes is failed by the periodic sweep (imports_purge_expired).
    JobStatus.CHECKING: frozenset(
        {JobStatus.CHECKED, JobStatus.REFUSED, JobStatus.UPLOADED, JobStatus.FAILED}
    ),
    JobStatus.CHECKED: frozenset({JobStatus.IMPORTING, JobStatus.DISCARDED}),
    JobStatus.IMPORTING: frozenset({JobStatus.IMPORTED, JobStatus.FAILED, JobStatus.CHECKED}),
    JobStatus.IMPORTED: frozenset({JobStatus.DISCARDED}),
    JobStatus.REFUSED: frozenset({JobStatus.DISCARDED}),
    JobStatus.FAILED: frozenset({JobStatus.DISCARDED}),
    JobStatus.DISCARDED: frozenset(),
}
RUNNING = (JobStatus.CHECKING, JobStatus.IMPORTING)


class ImportJob(models.Model):
    """One uploaded file of KYC records and what became of it."""

    class Mode(models.TextChoices):
        ALL = "all", "All records (nothing if any is invalid)"
        VALID = "valid", "Only the valid records"

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.UPLOADED)
    filename = models.CharField(max_length=200)
    file_format = models.CharField(max_length=5)
    file_size = models.PositiveBigIntegerField(default=0)
    submit = models.BooleanField("submit for review after import", default=False)
    mode = models.CharField(max_length=5, choices=Mode.choices, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)  # progress of the running check or import
    records_created = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)  # why the file was refused or the import failed
    # A worker holding the job past this is presumed dead; the job may be taken again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the current check or import was started: past IMPORT_JOB_TIMEOUT_SECONDS it is failed.
    started_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.filename})"

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING


class ImportProblem(models.Model):
    """A problem with one row of an import's file, from its latest check (never holds the value)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="problems")
    row = models.PositiveIntegerField()
    field = models.CharField(max_length=80)
    message = models.TextField()
    severity = models.CharField(max_length=7, default="error")

    class Meta:
        ordering = ["row", "id"]
        indexes = [models.Index(fields=["job", "row"])]

    def __str__(self) -> str:
        return f"row {self.row} {self.field}"


class ImportFileChunk(models.Model):
    """Part of an uploaded file, Fernet-encrypted (it holds PII). Deleted with the job's file."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="import_chunk_seq_unique")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of import {self.job_id}"
