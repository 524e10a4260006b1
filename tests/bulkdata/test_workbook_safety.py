"""Workbooks are untrusted XML in a zip: parsed with defusedxml, off the request path, refused with a clear
message when they carry a DTD, are not workbooks or unpack to more than the upload limit; a job that a
worker never finishes is failed and its file purged by the periodic sweep."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from bulkdata import services, tasks
from bulkdata.models import ImportFileChunk, ImportJob, JobStatus
from bulkdata.parsers import MAX_UPLOAD_BYTES, FileRefused, read_rows
from institutions.models import AuditEvent, Branch, User
from tests.bulkdata.helpers import rows, xlsx_bytes
from tests.conftest import otp_login

pytestmark = pytest.mark.django_db

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)
SHARED_STRINGS_BOMB = LAUGHS.replace(b"lolz", b"sst") + (
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
    b"<si><t>&lol9;</t></si></sst>"
)
# A DTD without entities: defusedxml lets it through, Excel never writes one.
SHEET_WITH_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE worksheet [<!ELEMENT worksheet ANY>]>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>kyc_ref_no</t></is></c></row></sheetData></worksheet>'
)


def replaced(workbook: bytes, member: str, data: bytes) -> bytes:
    """The workbook with one member's content replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != member:
                target.writestr(info, source.read(info))
        target.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def padded(workbook: bytes, size: int) -> bytes:
    """The workbook with a member of ``size`` zero bytes: a few hundred KB compressed."""
    out = io.BytesIO(workbook)
    with (
        zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w", force_zip64=True) as member,
    ):
        block = bytes(1024 * 1024)
        for _ in range(size // len(block)):
            member.write(block)
        member.write(bytes(size % len(block)))
    return out.getvalue()


def refusal(data: bytes) -> str:
    with pytest.raises(FileRefused) as caught:
        list(read_rows(lambda: io.BytesIO(data), "records.xlsx"))
    return str(caught.value)


def test_openpyxl_parses_with_defusedxml() -> None:
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML


@pytest.mark.parametrize(
    ("member", "content"),
    [
        ("xl/sharedStrings.xml", SHARED_STRINGS_BOMB),
        ("xl/worksheets/sheet1.xml", SHEET_WITH_DTD),
        ("xl/workbook.xml", b"<workbook><sheets><sheet"),  # malformed XML
        ("xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row><c>"),
    ],
)
def test_a_workbook_with_a_dtd_or_malformed_xml_cannot_be_read(member: str, content: bytes) -> None:
    message = refusal(replaced(xlsx_bytes(rows(1)), member, content))
    assert message.startswith("This workbook cannot be read")


def test_a_zip_that_is_not_a_workbook_cannot_be_read() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert refusal(out.getvalue()).startswith("This workbook cannot be read")


def test_a_workbook_unpacking_beyond_the_upload_limit_is_refused_before_it_is_read() -> None:
    message = refusal(padded(xlsx_bytes(rows(1)), MAX_UPLOAD_BYTES + 1))
    assert f"more than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB" in message


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    sent: list[tuple[str, int]] = []
    for task in (tasks.import_job_check, tasks.import_job_run):
        monkeypatch.setattr(task, "delay", lambda pk, name=task.__name__: sent.append((name, pk)))
    return sent


def test_a_small_workbook_is_checked_and_imported_by_a_worker_not_the_request(
    alice: User, queued: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    otp_login(client, alice)
    branch = Branch.objects.get(code="BRA")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/data/imports/",
            {"file": SimpleUploadedFile("r.xlsx", xlsx_bytes(rows(2))), "branch": branch.pk},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert (job.status, queued) == (JobStatus.CHECKING, [("import_job_check", job.pk)])
    assert tasks.import_job_check(job.pk) == JobStatus.CHECKED
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    assert queued[-1] == ("import_job_run", job.pk)
    assert tasks.import_job_run(job.pk) == JobStatus.IMPORTED


def test_a_workbook_bomb_is_a_refused_job_not_a_stuck_one(
    alice: User, branch_a: Branch, queued: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    data = replaced(xlsx_bytes(rows(1)), "xl/sharedStrings.xml", SHARED_STRINGS_BOMB)
    job = services.import_job_create(
        actor=alice, branch=branch_a, upload=SimpleUploadedFile("r.xlsx", data), submit=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.import_job_start_check(job=job)
    assert tasks.import_job_check(job.pk) == JobStatus.REFUSED
    job.refresh_from_db()
    assert job.message.startswith("This workbook cannot be read")


def _stuck(job: ImportJob, status: str, *, age: timedelta, lease: timedelta | None = None) -> ImportJob:
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=status,
        created_at=now - age,
        started_at=now - age,
        lease_expires_at=None if lease is None else now + lease,
    )
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("status", [JobStatus.CHECKING, JobStatus.IMPORTING])
def test_a_job_stuck_past_the_timeout_is_failed_and_its_file_purged(
    alice: User, branch_a: Branch, settings: Any, status: str
) -> None:
    settings.IMPORT_JOB_TIMEOUT_SECONDS = 3600

    def new() -> ImportJob:
        return services.import_job_create(
            actor=alice,
            branch=branch_a,
            upload=SimpleUploadedFile("r.xlsx", xlsx_bytes(rows(1))),
            submit=False,
        )

    stuck, recent, held = new(), new(), new()  # each upload runs the sweep too: aged only after
    _stuck(stuck, status, age=timedelta(hours=2), lease=-timedelta(hours=1))
    _stuck(recent, status, age=timedelta(minutes=30))
    _stuck(held, status, age=timedelta(hours=2), lease=timedelta(minutes=5))  # a live worker

    assert tasks.imports_purge_expired() == 1
    assert tasks.imports_purge_expired() == 0  # safe to run twice
    stuck.refresh_from_db()
    assert stuck.status == JobStatus.FAILED
    assert stuck.file_deleted_at is not None
    assert "did not finish" in stuck.message
    assert not ImportFileChunk.objects.filter(job=stuck).exists()
    assert AuditEvent.objects.filter(action="import_timed_out", object_id=str(stuck.pk)).count() == 1
    for job in (recent, held):
        job.refresh_from_db()
        assert (job.status, job.file_deleted_at) == (status, None)
        assert ImportFileChunk.objects.filter(job=job).exists()
