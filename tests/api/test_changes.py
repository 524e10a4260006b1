"""GET /api/v1/records/?changed_since=CURSOR: status moves of the client's records, keyset-paged."""

from __future__ import annotations

from typing import Any

from api.models import ApiClient
from institutions.models import Branch, User
from records import services as record_services
from records.models import KycRecord
from tests.api.conftest import Api
from tests.api.factories import record_object
from tests.records.factories import valid_record

URL = "/api/v1/records/"


def send(api: Api, *numbers: int, **overrides: Any) -> None:
    records = [record_object(n, **overrides) for n in numbers]
    response = api.post(URL, {"branch_code": "BRA", "records": records})
    assert response.status_code == 201, response.content


def changes(api: Api, cursor: str = "", limit: int = 100) -> dict[str, Any]:
    response = api.get(URL, data={"changed_since": cursor, "limit": limit})
    assert response.status_code == 200, response.content
    answer: dict[str, Any] = response.json()
    return answer


def test_pages_through_every_move_once_in_order(api: Api, cbs: tuple[ApiClient, str], bob: User) -> None:
    send(api, 1, 2, 3)
    first = changes(api, limit=2)
    assert [(c["kyc_ref_no"], c["status"]) for c in first["changes"]] == [
        ("CBS-000001", "draft"),
        ("CBS-000002", "draft"),
    ]
    record = KycRecord.objects.get(kyc_ref_no="CBS-000001")
    record_services.record_submit(actor=cbs[0].user, record=record)
    record_services.record_return(actor=bob, record=record, reason="Check the address")

    second = changes(api, first["next_cursor"], limit=2)
    third = changes(api, second["next_cursor"], limit=2)

    assert [(c["kyc_ref_no"], c["status"]) for c in second["changes"] + third["changes"]] == [
        ("CBS-000003", "draft"),
        ("CBS-000001", "submitted"),
        ("CBS-000001", "returned"),
    ]
    assert changes(api, third["next_cursor"]) == {"changes": [], "next_cursor": third["next_cursor"]}


def test_an_edit_that_keeps_the_status_is_not_a_change(api: Api) -> None:
    send(api, 1)
    cursor = changes(api)["next_cursor"]

    send(api, 1, poa_vtc="Thane")

    assert changes(api, cursor)["changes"] == []


def test_other_branches_moves_are_not_listed(api: Api, mallory: User, branch_b: Branch) -> None:
    record_services.record_create(actor=mallory, branch=branch_b, data=valid_record() | {"kyc_ref_no": "B-1"})
    send(api, 1)

    assert [c["kyc_ref_no"] for c in changes(api)["changes"]] == ["CBS-000001"]


def test_unsettled_moves_wait_for_the_next_poll(api: Api, settings: Any) -> None:
    settings.API_CHANGES_SETTLE_SECONDS = 3600
    send(api, 1)

    answer = changes(api)

    assert answer["changes"] == []
    settings.API_CHANGES_SETTLE_SECONDS = 0
    assert len(changes(api, answer["next_cursor"])["changes"]) == 1


def test_a_cursor_not_from_the_api_is_400(api: Api) -> None:
    response = api.get(URL, data={"changed_since": "not-a-cursor"})

    assert response.status_code == 400
    assert "changed_since" in response.json()["detail"]
