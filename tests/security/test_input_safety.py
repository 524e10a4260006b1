"""Hostile input: markup is shown escaped, SQL-like text is only text, oversized bodies are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from institutions.models import Branch, User
from records import services
from records.models import KycRecord
from tests.conftest import new_record, otp_login

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_markup_in_free_text_fields_is_shown_escaped(client: Any, alice: User, branch_a: Branch) -> None:
    # Free text without a character rule (an address line is English letters and address punctuation only).
    record = new_record(alice, branch_a, kyc_verifier_name=MARKUP, kyc_verifier_branch=MARKUP[:50])
    otp_login(client, alice)
    client.post(f"/records/{record.pk}/reveal/")
    body = client.get(f"/records/{record.pk}/").content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_markup_in_a_return_reason_is_shown_escaped(
    client: Any, alice: User, bob: User, branch_a: Branch
) -> None:
    record = services.record_submit(actor=alice, record=new_record(alice, branch_a))
    services.record_return(actor=bob, record=record, reason=MARKUP)
    otp_login(client, alice)
    body = client.get(f"/records/{record.pk}/").content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_sql_like_search_is_just_text(client: Any, alice: User, branch_a: Branch) -> None:
    new_record(alice, branch_a)
    otp_login(client, alice)
    response = client.get(
        "/records/", {"q": "' OR 1=1 --", "status": "draft'; DROP TABLE records_kycrecord; --"}
    )
    assert response.status_code == 200
    assert list(response.context["page"].object_list) == []
    assert KycRecord.objects.count() == 1


def test_sql_like_text_is_stored_verbatim_and_harmless(alice: User, branch_a: Branch) -> None:
    text = "Robert'); DROP TABLE x;--"
    record = new_record(alice, branch_a, kyc_verifier_branch=text)
    assert KycRecord.objects.get(pk=record.pk).kyc_verifier_branch == text
    assert "records_kycrecord" in connection.introspection.table_names()


def test_oversized_request_body_is_refused(client: Any, alice: User, branch_a: Branch, settings: Any) -> None:
    otp_login(client, alice)
    big = "A" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(
        "/records/new/", {"kyc_ref_no": "BIG-1", "poa_address_line_1": big, "action": "save"}
    )
    assert response.status_code == 400
    assert not KycRecord.objects.filter(kyc_ref_no="BIG-1").exists()


def test_too_many_form_fields_are_refused(client: Any, alice: User, settings: Any) -> None:
    otp_login(client, alice)
    data = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    assert client.post("/records/new/", data).status_code == 400
