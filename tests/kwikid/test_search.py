"""Reading a CKYC search answer (pure) and KwikIDClient.search_pan against the stand-in over real HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from kwikid.client import (
    UPLOAD_PATH,
    KwikIDAuthError,
    KwikIDClient,
    KwikIDConnectError,
    KwikIDError,
    KwikIDRateLimitedError,
    KwikIDRejectedError,
    KwikIDServerError,
    KwikIDUnknownOutcomeError,
)
from kwikid.search import (
    EXCERPT_LIMIT,
    SearchFound,
    SearchNotFound,
    SearchUnreadable,
    normalise_kin,
    parse_registry_date,
    read_search_answer,
)
from kwikid_standin import SEARCH_PATH, StandIn, kin_for, sample_payload

TOKEN = "tok-Search-4b3a2918f7e6d5c4"
PAN = "ABCDE1234F"  # the PAN sample_payload uses
KIN = "50012345678901"


def _read(answer: Any, status: int = 200) -> Any:
    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    return read_search_answer(status, body, 12)


# --- read_search_answer: found, in every known shape --------------------------------------------------


def test_flat_upper_case_answer_gives_the_kin_and_both_dates() -> None:
    result = _read({"CKYC_NO": KIN, "KYC_DATE": "01-04-2019", "UPDATED_DATE": "15-06-2023", "REMARKS": ""})

    assert result == SearchFound(
        kin=KIN,
        kyc_date=date(2019, 4, 1),
        updated_date=date(2023, 6, 15),
        shape="flat",
        status_code=200,
        elapsed_ms=12,
    )


def test_nested_answer_gives_the_kin_and_dates() -> None:
    result = _read(
        {
            "data": {
                "ckyc_search_data": {"ckyc_id": KIN, "kyc_date": "2024-01-02", "updated_date": "2024-02-03"}
            },
            "success": True,
            "status_code": 200,
            "message": "Record found",
            "message_code": "success",
        }
    )

    assert isinstance(result, SearchFound)
    assert (result.kin, result.kyc_date, result.updated_date, result.shape) == (
        KIN,
        date(2024, 1, 2),
        date(2024, 2, 3),
        "nested",
    )


def test_ckyc_number_answer_gives_the_kin_and_no_date_when_none_is_given() -> None:
    result = _read({"ckyc_number": KIN, "name": "A B", "dob": "31-01-1990", "pincode": "400001"})

    assert isinstance(result, SearchFound)
    assert (result.kin, result.kyc_date, result.updated_date, result.shape) == (
        KIN,
        None,
        None,
        "ckyc_number",
    )


def test_a_numeric_kin_is_read_as_its_digits() -> None:
    result = _read({"ckyc_number": int(KIN), "kyc_date": "02/03/2024"})

    assert isinstance(result, SearchFound)
    assert (result.kin, result.kyc_date) == (KIN, date(2024, 3, 2))


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("01-04-2019", date(2019, 4, 1)),
        ("2019-04-01", date(2019, 4, 1)),
        ("01/04/2019", date(2019, 4, 1)),
        ("1-4-2019", date(2019, 4, 1)),
        ("01-Apr-2019", date(2019, 4, 1)),
        ("01-04-2019 10:15:00", date(2019, 4, 1)),
        ("2019-04-01T10:15:00", date(2019, 4, 1)),
        ("31-02-2019", None),
        ("2019-13-01", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (20190401, None),
    ],
)
def test_registry_dates_are_read_in_each_written_form(written: Any, expected: date | None) -> None:
    assert parse_registry_date(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (KIN, KIN),
        (f"S{KIN}", KIN),
        (f"l{KIN}", KIN),
        ("5001 2345 6789 01", KIN),
        ("5001-2345-6789-01", KIN),
        (f"  {KIN}  ", KIN),
        ("5001234567890", None),  # 13 digits
        ("500123456789012", None),  # 15 digits
        ("AB12CD34EF56GH", None),  # the 14-character reference ID is not a KIN
        ("XXXXXXXXXX8901", None),  # masked
        (f"X{KIN}", None),
        ("", None),
        (None, None),
        (True, None),
        (1.5, None),
    ],
)
def test_only_fourteen_digits_make_a_kin(written: Any, expected: str | None) -> None:
    assert normalise_kin(written) == expected


def test_an_answer_with_a_malformed_kin_is_unreadable() -> None:
    result = _read({"CKYC_NO": "5001234567890", "KYC_DATE": "01-04-2019"})

    assert isinstance(result, SearchUnreadable)


def test_found_keeps_nothing_of_the_answer_but_the_kin_and_dates() -> None:
    photo = "/9j/4AAQSkZJRgABAQAAAQABAAD" * 20
    result = _read(
        {
            "CKYC_NO": KIN,
            "NAME": "MR RAVI KUMAR",
            "FATHERS_NAME": "MR SURESH KUMAR",
            "AGE": "34",
            "KYC_DATE": "01-04-2019",
            "ID_LIST": [{"TYPE": "C", "ID_NO": "XXXXXX234F"}],
            "PHOTO": photo,
        }
    )

    kept = repr(result) + repr(vars(result) if hasattr(result, "__dict__") else result)
    assert "RAVI" not in kept and "SURESH" not in kept and photo[:20] not in kept and "234F" not in kept
    assert set(SearchFound.__dataclass_fields__) == {
        "kin",
        "kyc_date",
        "updated_date",
        "shape",
        "status_code",
        "elapsed_ms",
    }


# --- read_search_answer: not found --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"CKYC_NO": "", "REMARKS": "Record does not exist"}),
        (200, {"REMARKS": "RECORD NOT FOUND"}),
        (200, {"data": {"ckyc_search_data": None}, "success": False, "message": "No record found"}),
        (200, {"data": {"message": "No records found for the given ID"}, "success": False}),
        (200, {"message": "Customer does not exist in CKYC"}),
        (422, {"error": "record not found"}),
        (404, {"detail": "Not Found"}),
        (404, {"message": "No record found", "detail": {}}),
    ],
)
def test_not_found_answers_are_recognised(status: int, answer: Any) -> None:
    result = _read(answer, status)

    assert isinstance(result, SearchNotFound)
    assert result.status_code == status


def test_a_not_found_reason_quotes_no_identifier() -> None:
    result = _read({"REMARKS": f"Record does not exist for PAN {PAN} (ref 12345678)"})

    assert isinstance(result, SearchNotFound)
    assert PAN not in result.reason and "12345678" not in result.reason
    assert "does not exist" in result.reason


# --- read_search_answer: unreadable -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html><body>Service temporarily unavailable</body></html>"),
        (200, b'{"status": "processing"}'),
        (200, b"{}"),
        (200, b""),
        (200, b"[1, 2]"),
        (200, b'{"data": {"ckyc_search_data": {"ckyc_id": ""}}, "success": true}'),
        (404, b"<html><head><title>404 Not Found</title></head></html>"),  # a wrong URL, not an answer
        (422, b'{"detail": {"id_no": ["Enter a valid PAN."]}}'),
        (500, b'{"error": "record not found"}'),  # only 2xx, 404 and 422 are answers
    ],
)
def test_anything_else_is_unreadable_with_the_start_of_its_body(status: int, body: bytes) -> None:
    result = read_search_answer(status, body, 7)

    assert result == SearchUnreadable(excerpt=body.decode(), status_code=status, elapsed_ms=7)


def test_an_unreadable_excerpt_is_cut_short() -> None:
    result = read_search_answer(200, b"<p>" + "é".encode() * 5000, 1)

    assert isinstance(result, SearchUnreadable)
    assert len(result.excerpt) == EXCERPT_LIMIT


# --- KwikIDClient.search_pan against the stand-in -----------------------------------------------------


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def client(standin: StandIn) -> Iterator[KwikIDClient]:
    with KwikIDClient(base_url=standin.url, token=TOKEN, connect_timeout=2, read_timeout=2) as kwikid:
        yield kwikid


def _upload(client: KwikIDClient) -> None:
    client.upload(sample_payload(1))


def _texts(exc: BaseException) -> str:
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__
    return "\n".join(parts)


@pytest.mark.parametrize("shape", ["flat", "nested", "ckyc_number"])
def test_search_finds_an_uploaded_pan_in_every_shape(
    standin: StandIn, client: KwikIDClient, shape: str
) -> None:
    standin.set_faults(search_shape=shape)
    _upload(client)

    result = client.search_pan(PAN.lower())

    assert isinstance(result, SearchFound)
    assert (result.kin, result.shape, result.status_code) == (kin_for(PAN), shape, 200)
    assert result.kyc_date is not None and abs((result.kyc_date - date.today()).days) <= 1
    request = standin.stats()["last_request"]  # the last upload; the search sent the PAN upper-cased
    assert request is not None


@pytest.mark.parametrize(("shape", "status"), [("flat", 200), ("nested", 200), ("ckyc_number", 422)])
def test_search_before_registration_is_not_found_in_every_shape(
    standin: StandIn, client: KwikIDClient, shape: str, status: int
) -> None:
    standin.set_faults(search_shape=shape)

    result = client.search_pan(PAN)

    assert isinstance(result, SearchNotFound)
    assert result.status_code == status


def test_search_sends_the_pan_upper_cased_as_id_type_c(standin: StandIn) -> None:
    seen: list[bytes] = []

    with KwikIDClient(base_url=standin.url, token=TOKEN) as kwikid:
        original = kwikid._session.send

        def send(request: Any, **kwargs: Any) -> Any:
            seen.append(request.body)
            assert request.url.endswith(SEARCH_PATH)
            return original(request, **kwargs)

        kwikid._session.send = send  # type: ignore[method-assign]
        kwikid.search_pan(" abcde1234f ")

    assert json.loads(seen[0]) == {"id_type": "C", "id_no": PAN}


class _Spy:
    """Counts the session's full preparations and keeps each request sent, as it went out."""

    def __init__(self, kwikid: KwikIDClient) -> None:
        self.prepared: list[str] = []
        self.sent: list[Any] = []
        session = kwikid._session
        prepare_request, send = session.prepare_request, session.send

        def spy_prepare(request: Any) -> Any:
            self.prepared.append(request.url)
            return prepare_request(request)

        def spy_send(request: Any, **kwargs: Any) -> Any:
            self.sent.append(request)
            return send(request, **kwargs)

        session.prepare_request = spy_prepare  # type: ignore[method-assign]
        session.send = spy_send  # type: ignore[method-assign]


def test_searches_are_prepared_once_per_address_each_with_its_own_body(standin: StandIn) -> None:
    with KwikIDClient(base_url=standin.url, token=TOKEN) as kwikid:
        spy = _Spy(kwikid)
        kwikid.search_pan("ABCDE1234F")
        kwikid.search_pan("PQRST9876Z")
        kwikid.upload(sample_payload(1, prefix="T-"))

    searched, uploaded = spy.prepared  # two addresses, three requests
    assert searched.endswith(SEARCH_PATH) and uploaded.endswith(UPLOAD_PATH)
    first, second, upload = spy.sent
    assert json.loads(first.body) == {"id_type": "C", "id_no": "ABCDE1234F"}
    assert json.loads(second.body) == {"id_type": "C", "id_no": "PQRST9876Z"}
    assert second.headers["Content-Length"] == str(len(second.body))
    assert second.headers["Authorization"] == f"Bearer {TOKEN}"
    assert upload.headers["Content-Length"] == str(len(upload.body)) and len(upload.body) > 100
    assert standin.stats()["searches"] == 2


def test_a_cookie_the_session_holds_goes_with_every_request(standin: StandIn) -> None:
    with KwikIDClient(base_url=standin.url, token=TOKEN) as kwikid:
        spy = _Spy(kwikid)
        kwikid.search_pan(PAN)  # prepared without a cookie, and kept
        kwikid._session.cookies.set("AWSALB", "first")
        kwikid.search_pan(PAN)
        kwikid._session.cookies.set("AWSALB", "second")
        kwikid.search_pan(PAN)

    assert [request.headers.get("Cookie") for request in spy.sent] == [None, "AWSALB=first", "AWSALB=second"]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, KwikIDAuthError), (403, KwikIDAuthError), (500, KwikIDServerError), (503, KwikIDServerError)],
)
def test_search_errors_by_status(
    standin: StandIn, client: KwikIDClient, status: int, error_type: type[KwikIDError]
) -> None:
    standin.set_faults(search_status=status)

    with pytest.raises(error_type) as caught:
        client.search_pan(PAN)

    assert caught.value.status_code == status
    assert PAN not in _texts(caught.value) and TOKEN not in _texts(caught.value)


def test_search_with_a_refused_token_is_an_auth_error(standin: StandIn) -> None:
    with KwikIDClient(base_url=standin.url, token="not-the-token") as kwikid, pytest.raises(KwikIDAuthError):
        kwikid.search_pan(PAN)


def test_search_rate_limited_carries_retry_after(standin: StandIn, client: KwikIDClient) -> None:
    standin.set_faults(search_daily_cap=1)
    client.search_pan(PAN)

    with pytest.raises(KwikIDRateLimitedError) as caught:
        client.search_pan(PAN)

    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 86400


def test_search_other_4xx_is_rejected(standin: StandIn, client: KwikIDClient) -> None:
    with pytest.raises(KwikIDRejectedError) as caught:
        client.search_pan("NOT-A-PAN")

    assert caught.value.status_code == 400
    assert "NOT-A-PAN" not in _texts(caught.value)
    assert "search" in str(caught.value)


def test_search_redirect_is_rejected_not_followed(standin: StandIn, client: KwikIDClient) -> None:
    standin.set_faults(search_status=302)

    with pytest.raises(KwikIDRejectedError) as caught:
        client.search_pan(PAN)

    assert caught.value.status_code == 302


def test_search_read_timeout_is_an_unknown_outcome_without_the_pan(standin: StandIn) -> None:
    standin.set_faults(search_delay=2)

    with (
        KwikIDClient(base_url=standin.url, token=TOKEN, read_timeout=0.3) as kwikid,
        pytest.raises(KwikIDUnknownOutcomeError) as caught,
    ):
        kwikid.search_pan(PAN)

    assert "search" in str(caught.value)
    assert PAN not in _texts(caught.value) and TOKEN not in _texts(caught.value)


def test_search_with_nobody_listening_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with (
        KwikIDClient(base_url=f"http://127.0.0.1:{port}", token=TOKEN) as kwikid,
        pytest.raises(KwikIDConnectError) as caught,
    ):
        kwikid.search_pan(PAN)

    assert PAN not in _texts(caught.value)


def test_search_unreadable_body_comes_back_as_unreadable(standin: StandIn, client: KwikIDClient) -> None:
    standin.set_faults(search_unreadable=True)

    result = client.search_pan(PAN)

    assert isinstance(result, SearchUnreadable)
    assert result.status_code == 200 and "processing" in result.excerpt


@pytest.mark.parametrize("token", ["", "   ", "bad token\n"])
def test_search_with_an_unusable_token_sends_nothing(standin: StandIn, token: str) -> None:
    with KwikIDClient(base_url=standin.url, token=token) as kwikid, pytest.raises(KwikIDAuthError):
        kwikid.search_pan(PAN)

    assert standin.stats()["searches"] == 0


def test_search_without_a_pan_sends_nothing(standin: StandIn, client: KwikIDClient) -> None:
    with pytest.raises(ValueError, match="PAN"):
        client.search_pan("  ")

    assert standin.stats()["searches"] == 0


def test_upload_and_search_share_one_keep_alive_connection(standin: StandIn, client: KwikIDClient) -> None:
    _upload(client)
    upload_client = standin.stats()["last_request"]["client"]
    client.search_pan(PAN)
    _upload(client)

    assert standin.stats()["last_request"]["client"] == upload_client
