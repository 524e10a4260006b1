"""A large file goes through a real Celery worker: checked, previewed, imported, with progress."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from bulkdata.models import ImportJob, JobStatus
from institutions.models import Branch, User
from records.models import KycRecord
from tests.bulkdata.helpers import csv_bytes, rows
from tests.conftest import otp_login, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_large_file_is_checked_and_imported_by_the_worker(
    celery_worker_process: subprocess.Popen[bytes], settings: Any, alice: User, branch_a: Branch
) -> None:
    settings.IMPORT_SYNC_MAX_BYTES = 1_000  # this file is "large"
    records = rows(600)
    records[10]["gender"] = "Q"
    client = Client()
    otp_login(client, alice)
    client.post(
        "/data/imports/", {"file": SimpleUploadedFile("big.csv", csv_bytes(records)), "branch": branch_a.pk}
    )
    job = ImportJob.objects.get()
    checked = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=JobStatus.CHECKED).first(), 60)
    assert (checked.rows_total, checked.rows_invalid, checked.rows_done) == (600, 1, 600)
    # Warnings may come too: after a transactional test the PIN master is empty.
    assert checked.problems.filter(severity="error").get().row == 12
    assert not KycRecord.objects.exists()

    client.post(f"/data/imports/{job.pk}/confirm/", {"mode": "valid"})
    done = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=JobStatus.IMPORTED).first(), 60)
    assert done.records_created == 599
    assert KycRecord.objects.count() == 599
