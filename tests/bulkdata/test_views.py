"""Import pages (upload -> preview -> confirm, error file, background path) and exports (scope, masking,
audit, formula injection, round trip)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test import Client

from bulkdata import services, tasks
from bulkdata.models import ImportFileChunk, ImportJob, JobStatus
from institutions.models import AuditEvent, Branch, Role, User
from records import services as record_services
from records.models import KycRecord, Status
from tests.bulkdata.helpers import csv_bytes, rows, xlsx_bytes
from tests.conftest import make_user, new_record, otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def maker(alice: User) -> Client:
    client = Client()
    otp_login(client, alice)
    return client


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> Any:
    """Queued tasks run once the request's transaction commits, as a worker would run them (workbooks are
    always checked by a worker)."""
    for task in (tasks.import_job_check, tasks.import_job_run):
        monkeypatch.setattr(task, "delay", task)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def upload(client: Client, data: bytes, name: str = "records.csv", **extra: Any) -> Any:
    branch = Branch.objects.get(code="BRA")
    return client.post(
        "/data/imports/",
        {"file": SimpleUploadedFile(name, data), "branch": branch.pk, **extra},
    )


def test_upload_checks_and_saves_nothing_until_confirmed(maker: Client, alice: User) -> None:
    records = rows(3)
    records[1]["pan"] = "BAD"
    response = upload(maker, csv_bytes(records))
    job = ImportJob.objects.get()
    assert response["Location"] == f"/data/imports/{job.pk}/"
    assert (job.status, job.rows_total, job.rows_valid, job.rows_invalid) == (JobStatus.CHECKED, 3, 2, 1)
    assert not KycRecord.objects.exists()
    page = maker.get(response["Location"])
    html = page.content.decode()
    assert "Import the 2 valid records only" in html
    assert "Import all" not in html
    problem = page.context["page"][0]
    assert (problem.row, problem.field, problem.severity) == (3, "pan", "error")
    # The stored file is encrypted: no cell of it is in the database in clear.
    assert b"IMP-00001" not in b"".join(bytes(c.data) for c in ImportFileChunk.objects.all())

    response = maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "valid"})
    job.refresh_from_db()
    assert job.status == JobStatus.IMPORTED
    assert job.records_created == 2
    assert sorted(KycRecord.objects.values_list("kyc_ref_no", flat=True)) == ["IMP-00001", "IMP-00003"]
    assert set(KycRecord.objects.values_list("created_by", flat=True)) == {alice.pk}
    actions = list(AuditEvent.objects.filter(object_type="ImportJob").values_list("action", flat=True))
    assert set(actions) >= {"import_uploaded", "import_checked", "import_confirmed", "import_done"}


def test_preview_counts_have_thousands_separators(maker: Client) -> None:
    records = rows(2)
    records[1]["pan"] = "BAD"
    upload(maker, csv_bytes(records))
    job = ImportJob.objects.get()
    # As a file of 2,503 rows, 3 of them invalid, leaves it.
    ImportJob.objects.filter(pk=job.pk).update(rows_total=2503, rows_valid=2500, rows_invalid=3)

    html = maker.get(f"/data/imports/{job.pk}/").content.decode()

    assert "Import the 2,500 valid records only" in html
    assert 'id="rows-total">2,503<' in html


def test_all_mode_is_refused_while_rows_are_invalid(maker: Client) -> None:
    upload(maker, csv_bytes(rows(2, gender="Q")[:1] + rows(2)[1:]))
    job = ImportJob.objects.get()
    maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    job.refresh_from_db()
    assert job.status == JobStatus.CHECKED
    assert not KycRecord.objects.exists()


def test_a_refusal_shows_its_message_on_the_jobs_page(maker: Client) -> None:
    upload(maker, csv_bytes(rows(2, gender="Q")[:1] + rows(2)[1:]))
    job = ImportJob.objects.get()
    page = maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"}, follow=True)
    assert "Some rows are invalid: fix them, or import only the valid rows." in page.content.decode()


def test_clean_file_imports_all_and_submits(maker: Client) -> None:
    upload(maker, csv_bytes(rows(2)), submit="on")
    job = ImportJob.objects.get()
    maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    assert set(KycRecord.objects.values_list("status", flat=True)) == {Status.SUBMITTED}


def test_refused_file_shows_the_reason(maker: Client, worker: Any) -> None:
    with worker():
        response = upload(maker, xlsx_bytes(rows(1), sheets=3), "records.xlsx")
    job = ImportJob.objects.get()
    assert job.status == JobStatus.REFUSED
    assert "The workbook has 3 sheets" in maker.get(response["Location"]).content.decode()


def test_error_file_has_the_invalid_rows_and_an_errors_column(maker: Client) -> None:
    records = rows(3)
    records[0]["gender"] = "Q"
    records[2]["dob"] = None
    upload(maker, csv_bytes(records))
    job = ImportJob.objects.get()
    response = maker.get(f"/data/imports/{job.pk}/errors/")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0][-2:] == ["branch_code", "errors"]
    assert [line[0] for line in lines[1:]] == ["IMP-00001", "IMP-00003"]
    assert lines[1][-1].startswith("gender: Gender must be")
    assert lines[2][-1] == "dob: Date of birth is required"

    # Fixed, the error file goes back in as it is (its errors column is ignored).
    fixed = io.StringIO()
    writer = csv.writer(fixed)
    writer.writerow(lines[0])
    for line in lines[1:]:
        line[lines[0].index("gender")] = "M"
        line[lines[0].index("dob")] = "1980-01-31"
        writer.writerow(line)
    upload(maker, fixed.getvalue().encode())
    again = ImportJob.objects.latest("pk")
    assert (again.rows_total, again.rows_invalid) == (2, 0)


def test_error_file_never_carries_a_full_aadhaar_number(maker: Client) -> None:
    from tests.records.test_validation import AADHAAR

    records = rows(2)
    records[1]["poa_address_line_1"] = f"Flat 2, Aadhaar {AADHAAR}, MG Road"
    upload(maker, csv_bytes(records))
    job = ImportJob.objects.get()
    body = b"".join(maker.get(f"/data/imports/{job.pk}/errors/").streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(body)))
    assert [line[0] for line in lines[1:]] == ["IMP-00002"]
    assert lines[1][lines[0].index("poa_address_line_1")] == ""
    assert AADHAAR not in body


def test_error_file_of_a_workbook_is_a_workbook(maker: Client, worker: Any) -> None:
    with worker():
        upload(maker, xlsx_bytes(rows(2, gender="Q")), "records.xlsx")
    job = ImportJob.objects.get()
    response = maker.get(f"/data/imports/{job.pk}/errors/")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = list(sheet.values)
    assert len(values) == 3
    assert values[1][-1].startswith("gender:")


def test_discard_deletes_the_stored_file(maker: Client) -> None:
    upload(maker, csv_bytes(rows(1)))
    job = ImportJob.objects.get()
    maker.post(f"/data/imports/{job.pk}/discard/")
    job.refresh_from_db()
    assert job.status == JobStatus.DISCARDED
    assert job.file_deleted_at is not None
    assert not ImportFileChunk.objects.exists()


def test_large_file_is_checked_and_imported_by_tasks_safe_to_run_twice(
    maker: Client, settings: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_SYNC_MAX_BYTES = 10  # every file goes to the background
    queued: list[tuple[str, int]] = []
    monkeypatch.setattr(tasks.import_job_check, "delay", lambda pk: queued.append(("check", pk)))
    monkeypatch.setattr(tasks.import_job_run, "delay", lambda pk: queued.append(("run", pk)))
    with django_capture_on_commit_callbacks(execute=True):
        upload(maker, csv_bytes(rows(3)))
    job = ImportJob.objects.get()
    assert job.status == JobStatus.CHECKING
    assert queued == [("check", job.pk)]
    progress = maker.get(f"/data/imports/{job.pk}/progress.json").json()
    assert progress["running"] is True
    assert "import-progress" in maker.get(f"/data/imports/{job.pk}/").content.decode()

    assert tasks.import_job_check(job.pk) == JobStatus.CHECKED
    assert tasks.import_job_check(job.pk) == JobStatus.CHECKED  # a repeated message does nothing
    with django_capture_on_commit_callbacks(execute=True):
        maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    assert queued[-1] == ("run", job.pk)
    assert tasks.import_job_run(job.pk) == JobStatus.IMPORTED
    assert tasks.import_job_run(job.pk) == JobStatus.IMPORTED
    assert KycRecord.objects.count() == 3


def test_failed_import_keeps_nothing_and_says_why(maker: Client) -> None:
    upload(maker, csv_bytes(rows(2)))
    job = ImportJob.objects.get()
    # Between the preview and the confirmation someone enters one of the file's records.
    data = rows(2)[1]
    data["kyc_ref_no"] = "imp-00002"
    record_services.record_create(
        actor=User.objects.get(username="alice"), branch=Branch.objects.get(code="BRA"), data=data
    )
    maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "nothing was imported" in job.message
    assert KycRecord.objects.count() == 1
    assert job.problems.filter(row=3, field="kyc_ref_no").exists()


def test_templates_hold_the_columns(maker: Client) -> None:
    response = maker.get("/data/imports/template.csv")
    header = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[0].split(",")
    assert header[0] == "kyc_ref_no"
    assert header[-1] == "branch_code"
    assert maker.get("/data/imports/template.xlsx").status_code == 200


# --- exports ---------------------------------------------------------------------------------------------


def exported(client: Client, url: str, method: str = "GET") -> list[list[str]]:
    response = client.post(url) if method == "POST" else client.get(url)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_export_is_masked_scoped_and_unmasked_only_with_an_audit_event(
    maker: Client, alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    new_record(alice, branch_a, 1)
    new_record(mallory, branch_b, 1)
    masked = exported(maker, "/data/exports/records.csv")
    assert [row[1] for row in masked[1:]] == ["REF-BRA-000001"]  # never branch B's
    header = masked[0]
    assert masked[1][header.index("pan")] == "XXXXXX234F"
    assert not AuditEvent.objects.filter(action="records_exported_unmasked").exists()

    clear = exported(maker, "/data/exports/records-unmasked.csv", method="POST")
    assert clear[1][header.index("pan")] == "ABCPE1234F"
    event = AuditEvent.objects.get(action="records_exported_unmasked")
    device = alice.totpdevice_set.get()
    assert (event.actor, event.detail["records"]) == (alice, 1)
    assert event.detail["second_factor"] == device.persistent_id and device.key not in str(event.detail)


def test_auditor_sees_every_branch_masked_and_cannot_unmask(
    alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    new_record(alice, branch_a, 1)
    new_record(mallory, branch_b, 1)
    client = Client()
    otp_login(client, make_user("audrey", Role.AUDITOR))
    rows_ = exported(client, "/data/exports/records.csv")
    assert sorted(row[1] for row in rows_[1:]) == ["REF-BRA-000001", "REF-BRB-000001"]
    assert client.post("/data/exports/records-unmasked.csv").status_code == 403


def test_export_filters_by_status(maker: Client, alice: User, branch_a: Branch) -> None:
    record_services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    new_record(alice, branch_a, 2)
    assert [r[1] for r in exported(maker, "/data/exports/records.csv?status=draft")[1:]] == ["REF-BRA-000002"]


def test_formula_injection_is_defused_in_csv_and_xlsx(maker: Client, alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a, 1, kyc_verifier_designation="=HYPERLINK(1)", kyc_verifier_branch="@SUM(A1)")
    rows_ = exported(maker, "/data/exports/records.csv")
    header = rows_[0]
    assert rows_[1][header.index("kyc_verifier_designation")] == "'=HYPERLINK(1)"
    assert rows_[1][header.index("kyc_verifier_branch")] == "'@SUM(A1)"
    import openpyxl

    response = maker.get("/data/exports/records.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    row = list(sheet.values)[1]
    assert row[header.index("kyc_verifier_designation")] == "'=HYPERLINK(1)"
    assert all(cell.data_type != "f" for line in sheet.iter_rows() for cell in line)


def test_round_trip_export_then_import_gives_the_same_records(
    maker: Client, alice: User, branch_a: Branch
) -> None:
    from tests.records.factories import differently_abled_record, minimal_record

    for n, make in enumerate((differently_abled_record, minimal_record), start=1):
        data = make()
        data.update(kyc_ref_no=f"RT-{n}", pan=f"ABCPE123{n}F", kyc_verifier_branch="-Fort")
        record_services.record_create(actor=alice, branch=branch_a, data=data)
    before = {r.kyc_ref_no: record_services.record_data(r) for r in KycRecord.objects.all()}
    response = maker.post("/data/exports/records-unmasked.csv")
    data = b"".join(response.streaming_content)
    # Records are never deleted (their history is append-only): the originals step aside instead.
    KycRecord.objects.update(kyc_ref_no=Concat(Value("OLD-"), F("kyc_ref_no")), pan_hash="")
    upload(maker, data, "export.csv")
    job = ImportJob.objects.get()
    assert (job.rows_total, job.rows_invalid) == (2, 0), list(job.problems.values_list("row", "message"))
    maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    imported = KycRecord.objects.filter(kyc_ref_no__startswith="RT-")
    after = {r.kyc_ref_no: record_services.record_data(r) for r in imported}
    assert after == before


def test_batches_export_is_scoped(
    maker: Client, alice: User, bob: User, branch_a: Branch, branch_b: Branch, institution: Any
) -> None:
    from uploads.models import BatchItem, UploadBatch

    own = UploadBatch.objects.create(institution=institution, branch=branch_a, response_message="ok")
    other = UploadBatch.objects.create(institution=institution, branch=branch_b)
    mallory = make_user("mal2", Role.MAKER, branch_b)
    BatchItem.objects.create(batch=own, record=new_record(alice, branch_a, 1), position=0)
    BatchItem.objects.create(batch=other, record=new_record(mallory, branch_b, 1), position=0)
    lines = exported(maker, "/data/exports/batches.csv")
    assert [(line[0], line[11]) for line in lines[1:]] == [(str(own.pk), "REF-BRA-000001")]
    assert lines[1][8] == "ok"


def test_records_list_links_exports_with_its_filters_and_the_import(maker: Client) -> None:
    html = maker.get("/records/?status=draft").content.decode()
    assert 'href="/data/exports/records.csv?status=draft"' in html
    assert 'action="/data/exports/records-unmasked.xlsx?status=draft"' in html
    assert 'href="/data/imports/"' in html


def test_stored_files_are_purged_a_day_after_upload(maker: Client, alice: User, branch_a: Branch) -> None:
    from datetime import timedelta

    from django.utils import timezone

    records = rows(2)
    records[0]["gender"] = "Q"
    upload(maker, csv_bytes(records))
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert services.imports_purge_expired() == 1
    job.refresh_from_db()
    assert job.file_deleted_at is not None
    assert not ImportFileChunk.objects.exists()
    assert AuditEvent.objects.filter(action="import_file_purged", object_id=str(job.pk)).exists()
    response = maker.get(f"/data/imports/{job.pk}/errors/")
    assert response.status_code == 302  # back to the job page, which says the file is gone


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_json_request_body_is_imported_from_the_stored_file(maker: Client, bom: bytes) -> None:
    from tests.bulkdata.helpers import json_body

    upload(maker, bom + json_body(rows(2)), "body.json")
    job = ImportJob.objects.get()
    assert (job.file_format, job.status, job.rows_total, job.rows_invalid) == (
        "json",
        JobStatus.CHECKED,
        2,
        0,
    )
    maker.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"})
    assert KycRecord.objects.count() == 2


def test_purge_runs_periodically(settings: Any) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["purge-import-files"]["task"] == tasks.imports_purge_expired.name
    assert tasks.imports_purge_expired() == 0
