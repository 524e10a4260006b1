"""Import jobs: a small file is checked and imported within the request, a larger one by the tasks the
services queue once their transaction commits; a job a live worker holds is left alone; every refusal is a
PortalError whose message says what to do."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bulkdata import services, tasks
from bulkdata.models import ImportJob, ImportProblem, JobStatus
from bulkdata.parsers import FileRefused
from ckycportal.errors import ActionRefused, PortalError
from institutions.models import Branch, User
from records.models import KycRecord
from tests.bulkdata.helpers import csv_bytes, rows

pytestmark = pytest.mark.django_db


def new_job(alice: User, branch_a: Branch, data: bytes) -> ImportJob:
    return services.import_job_create(
        actor=alice, branch=branch_a, upload=SimpleUploadedFile("r.csv", data), submit=False
    )


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The tasks the services queue, by name, instead of sending them to the broker."""
    sent: list[tuple[str, int]] = []
    for task in (tasks.import_job_check, tasks.import_job_run):
        monkeypatch.setattr(task, "delay", lambda pk, name=task.__name__: sent.append((name, pk)))
    return sent


def test_a_small_file_is_checked_and_imported_within_the_request(
    alice: User, branch_a: Branch, queued: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    job = new_job(alice, branch_a, csv_bytes(rows(2)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.import_job_start_check(job=job)
        assert job.status == JobStatus.CHECKED
        job = services.import_job_confirm(actor=alice, job=job, mode=ImportJob.Mode.ALL)
    assert (job.status, job.records_created) == (JobStatus.IMPORTED, 2)
    assert (callbacks, queued) == ([], [])


def test_a_large_files_check_and_import_are_queued_once_the_transaction_commits(
    alice: User,
    branch_a: Branch,
    settings: Any,
    queued: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_SYNC_MAX_BYTES = 10  # every file goes to a worker
    job = new_job(alice, branch_a, csv_bytes(rows(2)))
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.import_job_start_check(job=job).status == JobStatus.CHECKING
    assert queued == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert queued == [("import_job_check", job.pk)]

    services.import_job_check(job_id=job.pk)
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.import_job_confirm(actor=alice, job=job, mode=ImportJob.Mode.ALL).status == (
            JobStatus.IMPORTING
        )
    assert queued[-1] == ("import_job_run", job.pk)
    assert not KycRecord.objects.exists()


def test_retry_queues_the_task_of_the_jobs_status(
    alice: User,
    branch_a: Branch,
    settings: Any,
    queued: list[tuple[str, int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.IMPORT_SYNC_MAX_BYTES = 10
    job = new_job(alice, branch_a, csv_bytes(rows(1)))
    services.import_job_start_check(job=job)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_job_retry(job=job)
    assert queued == [("import_job_check", job.pk)]
    services.import_job_check(job_id=job.pk)
    job.refresh_from_db()
    services.import_job_confirm(actor=alice, job=job, mode=ImportJob.Mode.ALL)
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.import_job_retry(job=job)
    assert queued == [("import_job_run", job.pk)]


def test_a_job_taken_by_a_live_worker_is_left_alone(alice: User, branch_a: Branch, settings: Any) -> None:
    settings.IMPORT_SYNC_MAX_BYTES = 10  # checked by a worker, not within this call
    job = new_job(alice, branch_a, csv_bytes(rows(1)))
    services.import_job_start_check(job=job)
    assert services._claim(job, JobStatus.CHECKING)  # a worker holds it now
    assert services.import_job_check(job_id=job.pk).status == JobStatus.CHECKING
    assert not ImportProblem.objects.exists()


def test_confirming_all_rows_while_some_are_invalid_is_refused_with_a_readable_message(
    alice: User, branch_a: Branch
) -> None:
    job = services.import_job_start_check(
        job=new_job(alice, branch_a, csv_bytes(rows(2, gender="Q")[:1] + rows(2)[1:]))
    )
    with pytest.raises(ActionRefused) as info:
        services.import_job_confirm(actor=alice, job=job, mode=ImportJob.Mode.ALL)
    assert info.value.message == "Some rows are invalid: fix them, or import only the valid rows."
    job.refresh_from_db()
    assert job.status == JobStatus.CHECKED


def test_a_move_the_jobs_status_does_not_allow_is_refused(alice: User, branch_a: Branch) -> None:
    job = new_job(alice, branch_a, csv_bytes(rows(1)))
    services.import_job_discard(actor=alice, job=job)
    with pytest.raises(PortalError, match="An import that is discarded cannot do that"):
        services.import_job_discard(actor=alice, job=job)


def test_a_refused_file_is_a_portal_error(alice: User, branch_a: Branch) -> None:
    with pytest.raises(FileRefused) as info:
        new_job(alice, branch_a, b"\x00\x01\x02 not records")
    assert isinstance(info.value, PortalError)
    assert "binary data" in info.value.message
    assert not ImportJob.objects.exists()
