"""The import pages on `make run`'s embedded database (SQLite), in a process of their own.

SQLite has one write lock: a second connection writing progress while the import's transaction is open
waited and failed with "database is locked", so every import confirmed on `make run` failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import csv, io
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from bulkdata.models import ImportJob
from institutions.models import Branch, Institution, Role, User
from records.models import KycRecord
from kwikid.fields import FIELDS
from tests.records.factories import valid_record

institution = Institution.objects.create(
    name="Bank", fi_code="FI1", region_code="R1", cersai_username="u", api_base_url="http://127.0.0.1:9"
)
branch = Branch.objects.create(institution=institution, code="MUM001", name="Mumbai")
maker = User.objects.create_user("maker", password="x-long-pass-2026", role=Role.MAKER)
maker.branches.add(branch)
out = io.StringIO()
writer = csv.writer(out)
writer.writerow(FIELDS)
for n in range(3):
    row = valid_record() | {"kyc_ref_no": f"SQLITE-{n}"}
    writer.writerow([{True: "Y", False: "N", None: ""}.get(row.get(f, ""), row.get(f, "")) for f in FIELDS])
client = Client()
client.force_login(maker)
upload = SimpleUploadedFile("records.csv", out.getvalue().encode())
client.post("/data/imports/", {"branch": branch.pk, "file": upload}, HTTP_HOST="localhost")
job = ImportJob.objects.get()
assert job.status == "checked", (job.status, job.message)
client.post(f"/data/imports/{job.pk}/confirm/", {"mode": "all"}, HTTP_HOST="localhost")
job.refresh_from_db()
print("RESULT", job.status, job.records_created, KycRecord.objects.count(), job.message)
"""


@pytest.mark.timeout(240)
def test_an_import_confirmed_on_sqlite_is_imported(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DJANGO_DEBUG": "true", "PORTAL_LOCAL_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "sqlite-test"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=200)
    result = subprocess.run(
        [*manage, "shell", "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RESULT imported 3 3 " in result.stdout, result.stdout[-2000:]
