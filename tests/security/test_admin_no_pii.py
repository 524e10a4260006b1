"""Every page of the administration site, list and change page alike, shows customer identifiers masked.

The seeded rows put a record's PAN, mobile, KIN and names wherever the portal may keep them in clear or
as free text: an edit's old and new values, an export's search terms, KwikID's replies.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.utils import timezone

from bulkdata.services import records_export_audit
from institutions.models import Branch, Institution, User
from records import services as record_services
from records.models import KycRecord
from registry.models import Outcome, RegistryCheck, SearchAttempt
from tests.conftest import new_record, otp_login
from uploads.models import UploadAttempt, UploadBatch

pytestmark = pytest.mark.django_db

CLEAR = ("ABCPE1234F", "ABCPE9999F", "9876543210", "9123456780", "12345678901234", "RAVI", "SURESH")
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
REPLY = "PAN ABCPE1234F, mobile 9876543210 and KIN 12345678901234 already exist"


def seed(maker: User, admin_user: User, branch: Branch, institution: Institution) -> None:
    record = new_record(maker, branch)
    record_services.record_update(
        actor=maker,
        record=record,
        data={"pan": "ABCPE9999F", "mobile_number": "9123456780", "applicant_first_name": "RAVINDRA"},
    )
    KycRecord.objects.filter(pk=record.pk).update(upload_message=REPLY, return_reason=f"Fix: {REPLY}")
    records_export_audit(
        actor=admin_user, unmasked=False, file_format="csv", filters={"q": "ABCPE1234F", "by": "pan"}, count=1
    )
    records_export_audit(
        actor=admin_user, unmasked=False, file_format="csv", filters={"q": "12345678901234"}, count=1
    )
    records_export_audit(
        actor=admin_user,
        unmasked=False,
        file_format="csv",
        filters={"q": "ravi suresh", "by": "name"},
        count=1,
    )
    batch = UploadBatch.objects.create(
        institution=institution,
        branch=branch,
        response_message=REPLY,
        response_detail={"failed_records": [{"kyc_ref_no": record.kyc_ref_no, "message": REPLY}]},
        error=REPLY,
    )
    UploadAttempt.objects.create(
        batch=batch, number=1, started_at=timezone.now(), response_body=REPLY, error_message=REPLY
    )
    RegistryCheck.objects.create(record=record, institution=institution)
    SearchAttempt.objects.create(
        institution=institution, record=record, outcome=Outcome.UNREADABLE, note=REPLY
    )


def test_no_admin_page_shows_a_clear_identifier(
    client: Any, alice: User, erin: User, branch_a: Branch, institution: Institution
) -> None:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    seed(alice, erin, branch_a, institution)
    otp_login(client, erin)
    pages = 0
    for model in admin.site._registry:
        meta = model._meta
        urls = [f"/admin/{meta.app_label}/{meta.model_name}/"]
        urls += [
            f"/admin/{meta.app_label}/{meta.model_name}/{pk}/change/"
            for pk in model._default_manager.values_list("pk", flat=True)[:5]
        ]
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            # Without the form's CSRF token: 64 random letters and digits spell "ravi" now and then.
            body = CSRF_VALUE.sub("", response.content.decode())
            shown = [value for value in CLEAR if value.lower() in body.lower()]
            assert not shown, f"{url} shows {shown}"
            pages += 1
    assert pages > 20
