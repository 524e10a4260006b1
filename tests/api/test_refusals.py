"""What the API refuses before it looks at records: tokens, rate, size, content type, malformed JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiClient
from institutions.models import AuditEvent
from records.models import KycRecord
from tests.api.conftest import Api
from tests.api.factories import record_object

URL = "/api/v1/records/"


def body(n: int = 1) -> dict[str, Any]:
    return {"branch_code": "BRA", "records": [record_object(n)]}


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"detail", "message"} and answer["message"]
    return answer


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer ckyc_not-a-real-token", "Basic dXNlcjpwYXNz"])
def test_missing_or_unknown_token_is_401(cbs: tuple[ApiClient, str], header: str) -> None:
    headers = {"Authorization": header} if header else {}

    response = Client().get(URL, headers=headers)

    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_401(api: Api, cbs: tuple[ApiClient, str]) -> None:
    ApiClient.objects.filter(pk=cbs[0].pk).update(revoked_at=timezone.now())

    answer = assert_error(api.post(URL, body()), 401)

    assert answer["detail"] == "Token revoked"
    assert not KycRecord.objects.exists()


def test_expired_token_is_401_and_an_unexpired_one_works(api: Api, cbs: tuple[ApiClient, str]) -> None:
    ApiClient.objects.filter(pk=cbs[0].pk).update(token_expires_at=timezone.now() + timedelta(hours=1))
    assert api.get(URL).status_code == 200

    ApiClient.objects.filter(pk=cbs[0].pk).update(token_expires_at=timezone.now() - timedelta(seconds=1))

    assert assert_error(api.get(URL), 401)["detail"] == "Token expired"


def test_use_is_noted_on_the_client(api: Api, cbs: tuple[ApiClient, str]) -> None:
    assert cbs[0].last_used_at is None

    api.get(URL)

    cbs[0].refresh_from_db()
    assert cbs[0].last_used_at is not None


def test_refusals_are_audited_once_a_minute_without_the_token(api: Api, cbs: tuple[ApiClient, str]) -> None:
    ApiClient.objects.filter(pk=cbs[0].pk).update(revoked_at=timezone.now())
    for _ in range(3):
        api.get(URL)

    events = list(AuditEvent.objects.filter(action="api.refused"))
    assert len(events) == 1
    assert events[0].detail == {"client": "cbs", "status": 401, "reason": "revoked token"}
    assert api.token not in str(events[0].detail)


def test_rate_limit_answers_429_with_retry_after(api: Api, cbs: tuple[ApiClient, str]) -> None:
    ApiClient.objects.filter(pk=cbs[0].pk).update(rate_limit_per_minute=2)

    statuses = [api.get(URL).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = api.get(URL)
    assert_error(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60
    assert AuditEvent.objects.filter(action="api.refused", detail__status=429).count() == 1


def test_rate_limit_is_per_client(api: Api, cbs: tuple[ApiClient, str], branch_a: Any) -> None:
    from tests.api.factories import make_client

    ApiClient.objects.filter(pk=cbs[0].pk).update(rate_limit_per_minute=1)
    _, other = make_client("other", branch_a)
    api.get(URL)

    assert api.get(URL).status_code == 429
    assert Api(other).get(URL).status_code == 200


def test_body_over_the_cap_is_413_before_it_is_read(api: Api, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 1000

    answer = assert_error(api.post(URL, body()), 413)

    assert "1000 bytes" in answer["message"]
    assert not KycRecord.objects.exists()
    assert AuditEvent.objects.filter(action="api.refused", detail__status=413).exists()


def test_djangos_own_upload_limit_does_not_limit_the_api(api: Api, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    assert api.post(URL, body()).status_code == 201


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv"])
def test_wrong_content_type_is_415(api: Api, content_type: str) -> None:
    assert_error(api.post(URL, "{}", content_type=content_type), 415)


def test_malformed_json_is_400_naming_the_position(api: Api) -> None:
    answer = assert_error(api.post(URL, '{"branch_code": "BRA",\n "records": [}'), 400)

    assert "line 2, column 14 (character 36)" in answer["message"]
    assert answer["detail"]["body"] == answer["message"]


def test_a_body_that_is_not_an_object_is_400(api: Api) -> None:
    assert assert_error(api.post(URL, "[1, 2]"), 400)["detail"] == {"body": "Must be a JSON object"}


def test_no_csrf_token_or_session_cookie_plays_a_part(api: Api) -> None:
    response = api.post(URL, body())  # the client enforces CSRF checks, and sends no CSRF token

    assert response.status_code == 201
    assert "Set-Cookie" not in response
    assert not response.cookies


def test_a_session_does_not_authenticate(client: Client, alice: Any) -> None:
    client.force_login(alice)

    assert_error(client.get(URL), 401)


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/records/x/y/z/../", "/api/v1/admin/"])
def test_unknown_paths_under_the_api_are_json_404s(api: Api, path: str) -> None:
    response = api.get(path)

    assert response.status_code in (401, 404)
    assert response["Content-Type"].startswith("application/json")


def test_an_unknown_path_is_a_json_404_even_without_a_token(db: None) -> None:
    response = Client().get("/api/v1/no-such-thing")

    assert_error(response, 404)


def test_bad_query_parameters_are_400_not_422(api: Api) -> None:
    answer = assert_error(api.get(URL + "?limit=0"), 400)

    assert "limit" in answer["detail"]


def test_a_client_whose_user_lost_the_maker_role_is_403_and_audited(
    api: Api, cbs: tuple[ApiClient, str]
) -> None:
    from institutions.models import Role, User

    User.objects.filter(pk=cbs[0].user_id).update(role=Role.CHECKER)

    assert_error(api.post(URL, body()), 403)
    assert not KycRecord.objects.exists()
    assert AuditEvent.objects.filter(action="api.refused", detail__status=403).exists()


def test_a_new_clients_rate_limit_is_the_settings_default(branch_a: Any, settings: Any) -> None:
    from tests.api.factories import make_client

    settings.API_DEFAULT_RATE_LIMIT = 7

    client, _ = make_client("new", branch_a)

    assert client.rate_limit_per_minute == 7


def test_a_body_that_is_not_utf8_is_400(api: Api) -> None:
    answer = assert_error(api.post(URL, b'{"branch_code": "\xff"}'), 400)

    assert answer["detail"] == {"body": "Not valid UTF-8"}
