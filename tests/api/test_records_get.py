"""GET /api/v1/records/{kyc_ref_no}: a record's fate, personal data masked, only at the client's branches."""

from __future__ import annotations

from typing import Any

from api.models import ApiClient
from institutions.models import Branch, User
from records import services as record_services
from records.models import KycRecord
from tests.api.conftest import Api
from tests.api.factories import record_object
from tests.records.factories import valid_record
from tests.records.registration import accepted, registered

URL = "/api/v1/records/"


def sent(api: Api, n: int = 1, **overrides: Any) -> KycRecord:
    response = api.post(URL, {"branch_code": "BRA", "records": [record_object(n, **overrides)]})
    assert response.status_code == 201, response.content
    return KycRecord.objects.get(pk=response.json()["records"][0]["id"])


def test_a_draft_answers_its_status_and_deadline_with_personal_data_masked(api: Api) -> None:
    record = sent(api)

    response = api.get(URL + "CBS-000001")

    assert response.status_code == 200
    answer = response.json()
    assert answer["kyc_ref_no"] == "CBS-000001" and answer["id"] == record.pk
    assert answer["status"] == "draft" and answer["status_label"] == "Draft"
    assert answer["upload_due_on"] == record.upload_due_on.isoformat()  # type: ignore[union-attr]
    assert answer["pan"] == "XXXXXX234F"
    assert answer["applicant_name"] == "R••• K•••"
    assert answer["ckyc_number"] == "" and answer["registered_at"] is None
    body = response.content.decode()
    for secret in ("ABCPE1234F", "RAVI", "9876543210", "1985-04-12", "400001"):
        assert secret not in body


def test_the_reference_is_matched_whatever_its_case_and_may_hold_a_slash(api: Api) -> None:
    sent(api, kyc_ref_no="BR01-2026/000123")

    assert api.get(URL + "br01-2026/000123").json()["kyc_ref_no"] == "BR01-2026/000123"


def test_an_accepted_record_answers_kwikids_message_and_upload_time(api: Api) -> None:
    accepted(sent(api))

    answer = api.get(URL + "CBS-000001").json()

    assert answer["status"] == "uploaded"
    assert answer["upload_message"] == "Accepted for processing"
    assert answer["uploaded_at"] is not None


def test_a_registered_record_answers_its_kin_masked_and_registry_dates(api: Api) -> None:
    record = registered(sent(api), "12345678901234")

    answer = api.get(URL + "CBS-000001").json()

    assert answer["status"] == "registered"
    assert answer["ckyc_number"] == "XXXXXXXXXX1234"
    assert answer["registry_kyc_date"] == record.registry_kyc_date.isoformat()  # type: ignore[union-attr]
    assert answer["registered_at"] is not None
    assert "12345678901234" not in api.get(URL + "CBS-000001").content.decode()


def test_another_branchs_record_is_404(api: Api, mallory: User, branch_b: Branch) -> None:
    record_services.record_create(actor=mallory, branch=branch_b, data=valid_record() | {"kyc_ref_no": "B-1"})

    response = api.get(URL + "B-1")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "message"}


def test_an_unknown_reference_is_404(api: Api, cbs: tuple[ApiClient, str]) -> None:
    assert api.get(URL + "NOPE").status_code == 404


def test_a_reference_postgresql_cannot_hold_is_404_not_500(api: Api) -> None:
    assert api.get(URL + "CBS%00").status_code == 404
