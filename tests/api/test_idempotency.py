"""Idempotency: by kyc_ref_no (same content, changed content, locked records), and by Idempotency-Key."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import ApiClient, IdempotentRequest
from institutions.models import Branch, User
from records import services as record_services
from records.models import KycRecord, RecordEvent, Status
from tests.api.conftest import Api
from tests.api.factories import make_client, record_object
from tests.records.factories import valid_record

URL = "/api/v1/records/"


def body(*records: dict[str, Any]) -> dict[str, Any]:
    return {"branch_code": "BRA", "records": list(records)}


def test_same_content_again_changes_nothing_and_answers_as_before(api: Api) -> None:
    first = api.post(URL, body(record_object(1))).json()
    before = KycRecord.objects.get()

    again = api.post(URL, body(record_object(1)))

    assert again.status_code == 201
    assert again.json()["records"] == [{**first["records"][0], "outcome": "unchanged"}]
    after = KycRecord.objects.get()
    assert after.updated_at == before.updated_at
    assert RecordEvent.objects.count() == 1


def test_same_content_in_other_case_and_spacing_is_the_same_record(api: Api) -> None:
    api.post(URL, body(record_object(1)))
    record = record_object(1)
    record["kyc_ref_no"] = "cbs-000001"
    record["basic_details"]["applicant_first_name"] = "  ravi "

    again = api.post(URL, body(record))

    assert again.json()["records"][0]["outcome"] == "unchanged"
    assert KycRecord.objects.count() == 1


def test_changed_content_updates_an_editable_record_with_an_edit_event(api: Api) -> None:
    api.post(URL, body(record_object(1)))

    response = api.post(URL, body(record_object(1, poa_vtc="Thane")))

    assert response.status_code == 201
    assert response.json()["records"][0]["outcome"] == "updated"
    record = KycRecord.objects.get()
    assert record.poa_vtc == "Thane"
    edit = RecordEvent.objects.get(action=RecordEvent.Action.EDITED)
    assert [change["field"] for change in edit.changed_fields] == ["poa_vtc"]


def test_a_returned_record_is_updated_and_resubmitted_when_the_client_submits(
    branch_a: Branch, bob: User
) -> None:
    _, token = make_client("onboarding", branch_a, submit_on_arrival=True)
    api = Api(token)
    api.post(URL, body(record_object(1)))
    record = KycRecord.objects.get()
    record_services.record_return(actor=bob, record=record, reason="Wrong address")

    response = api.post(URL, body(record_object(1, poa_vtc="Thane")))

    assert response.status_code == 201, response.content
    assert response.json()["records"][0] | {"id": 0} == {
        "kyc_ref_no": "CBS-000001",
        "id": 0,
        "status": "submitted",
        "outcome": "updated",
    }


def test_changed_content_for_a_locked_record_is_409_naming_it_and_saves_nothing(
    api: Api, cbs: tuple[ApiClient, str]
) -> None:
    api.post(URL, body(record_object(1)))
    record_services.record_submit(actor=cbs[0].user, record=KycRecord.objects.get())

    response = api.post(URL, body(record_object(2), record_object(1, poa_vtc="Thane")))

    assert response.status_code == 409
    assert set(response.json()["detail"]) == {"records[1].kyc_ref_no"}
    assert "CBS-000001" in response.json()["detail"]["records[1].kyc_ref_no"]
    assert KycRecord.objects.count() == 1
    assert KycRecord.objects.get().poa_vtc == "Mumbai"


def test_same_content_for_a_locked_record_answers_its_status(api: Api, cbs: tuple[ApiClient, str]) -> None:
    api.post(URL, body(record_object(1)))
    record_services.record_submit(actor=cbs[0].user, record=KycRecord.objects.get())

    response = api.post(URL, body(record_object(1)))

    assert response.status_code == 201
    assert response.json()["records"][0]["status"] == "submitted"


def test_a_reference_used_at_another_branch_is_409(api: Api, mallory: User, branch_b: Branch) -> None:
    data = valid_record() | {"kyc_ref_no": "CBS-000001"}
    record_services.record_create(actor=mallory, branch=branch_b, data=data)

    response = api.post(URL, body(record_object(1)))

    assert response.status_code == 409
    assert "records[0].kyc_ref_no" in response.json()["detail"]


def test_idempotency_key_replays_the_stored_answer(api: Api) -> None:
    headers = {"Idempotency-Key": "batch-2026-12-02-001"}
    first = api.post(URL, body(record_object(1)), headers=headers)
    # Meanwhile someone changes the record: a replay still answers what the first request answered.
    KycRecord.objects.update(poa_vtc="Nagpur")

    with CaptureQueriesContext(connection) as queries:
        replay = api.post(URL, body(record_object(1)), headers=headers)

    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert not any(q["sql"].lstrip().upper().startswith(("INSERT", 'UPDATE "records')) for q in queries)
    assert IdempotentRequest.objects.get().response == first.json()
    assert RecordEvent.objects.count() == 1


def test_idempotency_key_with_a_different_body_is_422(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    api.post(URL, body(record_object(1)), headers=headers)

    response = api.post(URL, body(record_object(2)), headers=headers)

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert KycRecord.objects.count() == 1


def test_idempotency_keys_are_per_client(api: Api, branch_a: Branch) -> None:
    _, other = make_client("other", branch_a)
    api.post(URL, body(record_object(1)), headers={"Idempotency-Key": "k1"})

    response = Api(other).post(URL, body(record_object(2)), headers={"Idempotency-Key": "k1"})

    assert response.status_code == 201
    assert KycRecord.objects.count() == 2


def test_a_refused_request_keeps_no_answer_under_its_key(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert api.post(URL, body(record_object(1, pan="XX")), headers=headers).status_code == 400

    response = api.post(URL, body(record_object(1)), headers=headers)

    assert response.status_code == 201
    assert IdempotentRequest.objects.count() == 1


def test_status_stays_draft_when_the_client_does_not_submit(api: Api) -> None:
    api.post(URL, body(record_object(1)))

    assert KycRecord.objects.get().status == Status.DRAFT
