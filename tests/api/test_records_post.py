"""POST /api/v1/records/: KwikID-shaped records checked by the portal's rules, saved all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from api.models import ApiClient
from institutions.models import AuditEvent, Branch
from records.models import KycRecord, RecordEvent, Status
from tests.api.conftest import Api
from tests.api.factories import make_client, record_object

URL = "/api/v1/records/"


def body(*records: dict[str, Any], branch_code: str = "BRA", **extra: Any) -> dict[str, Any]:
    return {"branch_code": branch_code, "records": list(records), **extra}


def test_valid_records_arrive_as_drafts_made_by_the_client(api: Api, cbs: tuple[ApiClient, str]) -> None:
    response = api.post(URL, body(record_object(1), record_object(2)))

    assert response.status_code == 201, response.content
    answer = response.json()
    records = KycRecord.objects.order_by("kyc_ref_no")
    assert [r["kyc_ref_no"] for r in answer["records"]] == ["CBS-000001", "CBS-000002"]
    assert [r["id"] for r in answer["records"]] == [r.pk for r in records]
    assert {r["status"] for r in answer["records"]} == {"draft"}
    assert {r.created_by_id for r in records} == {cbs[0].user_id}
    assert records[0].applicant_first_name == "RAVI"


def test_kwikid_header_fields_are_accepted_and_ignored(api: Api) -> None:
    extra = {"fi_code": "X", "version": "V1.3", "region_code": "MH", "username": "u"}
    response = api.post(URL, body(record_object(1), **extra))

    assert response.status_code == 201, response.content


def test_existing_ckyc_no_is_kept(api: Api) -> None:
    response = api.post(URL, body(record_object(1, existing_ckyc_no="12345678901234")))

    assert response.status_code == 201, response.content
    assert KycRecord.objects.get().existing_ckyc_no == "12345678901234"


def test_submit_on_arrival_sends_records_to_review(branch_a: Branch) -> None:
    _, token = make_client("onboarding", branch_a, submit_on_arrival=True)

    response = Api(token).post(URL, body(record_object(1)))

    assert response.status_code == 201, response.content
    assert response.json()["records"][0]["status"] == "submitted"
    assert KycRecord.objects.get().status == Status.SUBMITTED


def test_one_bad_record_saves_nothing_and_names_the_field_with_the_portals_message(api: Api) -> None:
    bad = record_object(2)
    bad["basic_details"]["dob"] = "2090-01-01"
    bad["pan"] = "ABCDE1234F"

    response = api.post(URL, body(record_object(1), bad))

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "records[1].basic_details.dob" in detail
    assert detail["records[1].pan"].startswith("PAN must be 5 letters")
    assert response.json()["message"]
    assert not KycRecord.objects.exists()


def test_unknown_fields_are_refused_with_their_path(api: Api) -> None:
    record = record_object(1)
    record["basic_details"]["nickname"] = "Ravi"
    record["basic_details"]["disability_info"]["wheelchair"] = True
    record["colour"] = "blue"

    response = api.post(URL, body(record, extra_member=1))

    assert response.status_code == 400
    assert set(response.json()["detail"]) >= {
        "records[0].basic_details.nickname",
        "records[0].basic_details.disability_info.wheelchair",
        "records[0].colour",
        "extra_member",
    }
    assert not KycRecord.objects.exists()


def test_a_full_aadhaar_number_anywhere_is_refused(api: Api) -> None:
    record = record_object(1, poa_document_number="2341 2341 2346")
    record["remarks"] = "aadhaar 2341-2341-2346"
    record["poa"]["poa_address_line_1"] = "Flat 2341 2341 2346"

    response = api.post(URL, body(record))

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "must never be stored" in detail["records[0].poa.poa_document_number"]
    assert "Aadhaar" in detail["records[0].poa.poa_address_line_1"]
    assert "Aadhaar" in detail["records[0].remarks"]
    assert "2341" not in response.content.decode()


def test_wrong_types_and_shapes_are_refused_by_path(api: Api) -> None:
    record = record_object(1)
    record["poa"] = "somewhere"
    record["basic_details"]["applicant_first_name"] = 42

    response = api.post(URL, body(record, "not a record"))

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "records[0].poa" in detail
    assert detail["records[0].basic_details.applicant_first_name"] == "First name must be text"
    assert "records[1]" in detail


def test_more_than_the_maximum_records_is_refused_naming_records(api: Api, settings: Any) -> None:
    settings.API_MAX_RECORDS = 2

    response = api.post(URL, body(record_object(1), record_object(2), record_object(3)))

    assert response.status_code == 400
    assert "At most 2 records" in response.json()["detail"]["records"]


def test_no_records_or_no_branch_is_refused(api: Api) -> None:
    response = api.post(URL, {"records": []})

    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"records", "branch_code"}


def test_the_same_reference_twice_in_one_request_is_refused(api: Api) -> None:
    response = api.post(URL, body(record_object(1), record_object(1)))

    assert response.status_code == 400
    assert "records[1].kyc_ref_no" in response.json()["detail"]


def test_another_branchs_code_is_404(api: Api, branch_b: Branch) -> None:
    response = api.post(URL, body(record_object(1), branch_code="BRB"))

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "message"}
    assert not KycRecord.objects.exists()


def test_dry_run_checks_without_saving(api: Api) -> None:
    response = api.post(URL + "?dry_run=true", body(record_object(1)))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "dry_run": True,
        "records": [{"kyc_ref_no": "CBS-000001", "id": None, "status": "draft", "outcome": "created"}],
    }
    assert not KycRecord.objects.exists()


def test_dry_run_still_refuses_bad_records(api: Api) -> None:
    response = api.post(URL + "?dry_run=true", body(record_object(1, pan="XX")))

    assert response.status_code == 400
    assert "records[0].pan" in response.json()["detail"]


def test_each_post_is_audited_without_personal_data(api: Api, cbs: tuple[ApiClient, str]) -> None:
    api.post(URL, body(record_object(1)))
    api.post(URL + "?dry_run=true", body(record_object(2, pan="XX")))

    events = list(AuditEvent.objects.filter(action="api.request").order_by("id"))
    assert [e.detail["outcome"] for e in events] == ["saved", "refused 400"]
    assert [e.detail["dry_run"] for e in events] == [False, True]
    assert events[0].detail["records"] == 1 and events[0].detail["created"] == 1
    assert {e.actor_id for e in events} == {cbs[0].user_id}
    assert "ABCPE1234F" not in str([e.detail for e in events])
    assert "RAVI" not in str([e.detail for e in events])


@pytest.mark.parametrize("status", [Status.DRAFT])
def test_created_records_have_a_created_event_by_the_client(api: Api, status: str) -> None:
    api.post(URL, body(record_object(1)))

    event = RecordEvent.objects.get()
    assert event.action == RecordEvent.Action.CREATED and event.to_status == status


def test_a_branch_code_postgresql_cannot_hold_is_404_not_500(api: Api) -> None:
    response = api.post(URL, body(record_object(1), branch_code="BR\x00A"))

    assert response.status_code == 404


def test_a_malformed_existing_kin_is_refused_by_the_portals_rule_and_nothing_saved(api: Api) -> None:
    response = api.post(URL, body(record_object(1), record_object(2, existing_ckyc_no="1234")))

    assert response.status_code == 400
    assert response.json()["detail"] == {
        "records[1].existing_ckyc_no": "The existing CKYC number (KIN) has exactly 14 digits."
    }
    assert not KycRecord.objects.exists()
