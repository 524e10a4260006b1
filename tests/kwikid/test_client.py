"""KwikIDClient against the KwikID stand-in over real HTTP (no database)."""

from __future__ import annotations

import json
import pickle
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from kwikid import client as client_module
from kwikid.client import (
    BODY_LIMIT,
    KwikIDAuthError,
    KwikIDClient,
    KwikIDConnectError,
    KwikIDError,
    KwikIDRateLimitedError,
    KwikIDRejectedError,
    KwikIDServerError,
    KwikIDTransientError,
    KwikIDUnknownOutcomeError,
    UploadResult,
    process_session,
)
from kwikid_standin import UPLOAD_PATH, StandIn, sample_payload

TOKEN = "tok-Secret-9f8e7d6c5b4a3921"
PAN = "ABCDE1234F"  # the PAN sample_payload uses: it must never reach an error's text either


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def client(standin: StandIn) -> Iterator[KwikIDClient]:
    with KwikIDClient(base_url=standin.url, token=TOKEN, connect_timeout=2, read_timeout=5) as kwikid:
        yield kwikid


def _free_port() -> int:
    """A port nothing listens on: bound by the OS, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _texts(exc: BaseException) -> str:
    """Everything an error could print: str and repr of it and of whatever it was raised from."""
    parts = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__
    return "\n".join(parts)


# --- success ------------------------------------------------------------------------------------------


def test_accepted_upload_returns_result(client: KwikIDClient, standin: StandIn) -> None:
    result = client.upload(sample_payload(2))

    assert isinstance(result, UploadResult)
    assert result.status_code == 200
    assert result.message == "2 records accepted for processing"
    assert result.status == "success"
    assert "accepted" in result.body
    assert result.elapsed_ms >= 0
    assert standin.stats()["accepted_records"] == 2


def test_upload_sends_bearer_json_headers_and_compact_body(client: KwikIDClient, standin: StandIn) -> None:
    payload = sample_payload(1)

    client.upload(payload)

    last = standin.stats()["last_request"]
    headers = {name.lower(): value for name, value in last["headers"].items()}
    assert last["method"] == "POST"
    assert last["path"] == UPLOAD_PATH
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert int(headers["content-length"]) == len(json.dumps(payload, separators=(",", ":")))
    assert last["body"] == payload


@pytest.mark.parametrize("suffix", ["", "/", "//"])
def test_base_url_is_joined_with_one_slash(standin: StandIn, suffix: str) -> None:
    with KwikIDClient(base_url=standin.url + suffix, token=TOKEN) as kwikid:
        kwikid.upload(sample_payload(1))

    assert standin.stats()["last_request"]["path"] == UPLOAD_PATH


def test_uploads_reuse_one_keep_alive_connection(client: KwikIDClient, standin: StandIn) -> None:
    client.upload(sample_payload(1, prefix="A-"))
    first = standin.stats()["last_request"]["client"]
    client.upload(sample_payload(1, prefix="B-"))

    assert standin.stats()["last_request"]["client"] == first


def test_success_with_non_json_body_still_returns_result(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=200, body="OK", content_type="text/plain")

    result = client.upload(sample_payload(1))

    assert (result.status_code, result.message, result.status, result.body) == (200, "", "", "OK")


def test_success_body_is_truncated(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=200, body="x" * 5000, content_type="text/plain")

    assert len(client.upload(sample_payload(1)).body) == BODY_LIMIT


# --- rejected and auth --------------------------------------------------------------------------------


def test_validation_failure_raises_rejected_with_detail_naming_the_field(
    client: KwikIDClient, standin: StandIn
) -> None:
    payload = sample_payload(2)
    payload["records"][1]["pan"] = "not-a-pan"

    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(payload)

    assert caught.value.status_code == 400
    assert caught.value.message == "Validation failed"
    assert list(caught.value.detail) == ["records[1].pan"]
    assert "records[1].pan" in caught.value.body
    assert standin.stats()["accepted_records"] == 0


def test_rejected_detail_is_empty_when_body_is_not_json(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=404, body="<html>not here</html>")

    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(sample_payload(1))

    assert (caught.value.status_code, caught.value.detail, caught.value.message) == (404, {}, "")
    assert caught.value.body == "<html>not here</html>"


def test_rejected_keeps_detail_of_any_json_type(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=422, body='{"detail": ["bad batch"], "message": "nope"}')

    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(sample_payload(1))

    assert (caught.value.detail, caught.value.message) == (["bad batch"], "nope")


def test_redirect_is_not_followed_and_raises_rejected(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=307, headers={"Location": standin.url + UPLOAD_PATH}, body="")

    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(sample_payload(1))

    assert caught.value.status_code == 307
    assert standin.stats()["requests"] == 1
    assert standin.stats()["accepted_records"] == 0


def test_wrong_token_raises_auth_error_with_detail(standin: StandIn) -> None:
    with (
        KwikIDClient(base_url=standin.url, token="not-the-token") as kwikid,
        pytest.raises(KwikIDAuthError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert caught.value.status_code == 401
    assert caught.value.message == "Invalid token"
    assert "authorization" in caught.value.detail


def test_forbidden_raises_auth_error(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=403)

    with pytest.raises(KwikIDAuthError) as caught:
        client.upload(sample_payload(1))

    assert caught.value.status_code == 403


@pytest.mark.parametrize("token", ["", "   "])
def test_empty_token_raises_auth_error_before_any_request(standin: StandIn, token: str) -> None:
    with (
        KwikIDClient(base_url=standin.url, token=token) as kwikid,
        pytest.raises(KwikIDAuthError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert caught.value.status_code is None
    assert standin.stats()["requests"] == 0


def test_token_that_would_break_the_header_is_refused_before_any_request(standin: StandIn) -> None:
    token = TOKEN + "\r\nX-Injected: 1"
    with (
        KwikIDClient(base_url=standin.url, token=token) as kwikid,
        pytest.raises(KwikIDAuthError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert TOKEN not in _texts(caught.value)
    assert standin.stats()["requests"] == 0


# --- transient ----------------------------------------------------------------------------------------


def test_server_error_keeps_html_body(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=502)

    with pytest.raises(KwikIDServerError) as caught:
        client.upload(sample_payload(1))

    assert isinstance(caught.value, KwikIDTransientError)
    assert caught.value.status_code == 502
    assert caught.value.body.startswith("<html>")
    assert "502 Bad Gateway" in caught.value.body


def test_server_error_body_is_truncated(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=500, body="<html>" + "x" * 5000, content_type="text/html")

    with pytest.raises(KwikIDServerError) as caught:
        client.upload(sample_payload(1))

    assert len(caught.value.body) == BODY_LIMIT


def test_rate_limit_raises_with_retry_after_seconds(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=429, retry_after="2")

    with pytest.raises(KwikIDRateLimitedError) as caught:
        client.upload(sample_payload(1))

    assert isinstance(caught.value, KwikIDTransientError)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 2.0


def test_rate_limit_retry_after_http_date_becomes_seconds(client: KwikIDClient, standin: StandIn) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    standin.set_faults(fail_next=1, status=429, retry_after=format_datetime(when, usegmt=True))

    with pytest.raises(KwikIDRateLimitedError) as caught:
        client.upload(sample_payload(1))

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.parametrize("header", ["soon", "-1", ""])
def test_rate_limit_with_unusable_retry_after_has_none(
    client: KwikIDClient, standin: StandIn, header: str
) -> None:
    standin.set_faults(fail_next=1, status=429, retry_after=header)

    with pytest.raises(KwikIDRateLimitedError) as caught:
        client.upload(sample_payload(1))

    assert caught.value.retry_after is None


def test_connection_refused_raises_connect_error() -> None:
    with (
        KwikIDClient(base_url=f"http://127.0.0.1:{_free_port()}", token=TOKEN) as kwikid,
        pytest.raises(KwikIDConnectError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert isinstance(caught.value, KwikIDTransientError)
    assert caught.value.status_code is None


# --- unknown outcome ----------------------------------------------------------------------------------


def test_hang_past_read_timeout_raises_unknown_outcome_within_a_second(standin: StandIn) -> None:
    standin.set_faults(hang_next=1, hang_seconds=3)
    started = time.monotonic()

    with (
        KwikIDClient(base_url=standin.url, token=TOKEN, read_timeout=0.5) as kwikid,
        pytest.raises(KwikIDUnknownOutcomeError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert time.monotonic() - started < 1.2
    assert not isinstance(caught.value, KwikIDTransientError)
    assert caught.value.elapsed_ms is not None
    assert standin.stats()["requests"] == 1


def test_connection_dropped_after_body_raises_unknown_outcome_without_resending(
    client: KwikIDClient, standin: StandIn
) -> None:
    standin.set_faults(drop_next=1)

    with pytest.raises(KwikIDUnknownOutcomeError):
        client.upload(sample_payload(1))

    assert standin.stats()["requests"] == 1


def test_accepted_but_lost_answer_raises_unknown_outcome(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(accept_then_drop_next=1)

    with pytest.raises(KwikIDUnknownOutcomeError):
        client.upload(sample_payload(3))

    # Why this is not transient: KwikID did take the records.
    assert standin.stats()["accepted_records"] == 3


def test_client_recovers_after_a_dropped_connection(client: KwikIDClient, standin: StandIn) -> None:
    standin.set_faults(drop_next=1)
    with pytest.raises(KwikIDUnknownOutcomeError):
        client.upload(sample_payload(1, prefix="A-"))

    assert client.upload(sample_payload(1, prefix="B-")).status_code == 200


# --- failures that are hard to cause over real HTTP, classified from the exceptions urllib3 raises -------


class _RaisingAdapter(HTTPAdapter):
    """Raises a prepared exception instead of sending, as requests' own adapter would."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        raise self.error


def _client_raising(error: Exception) -> KwikIDClient:
    session = requests.Session()
    session.mount("http://", _RaisingAdapter(error))
    return KwikIDClient(base_url="http://kwikid.test", token=TOKEN, session=session)


def _not_connected(reason: Exception) -> MaxRetryError:
    return MaxRetryError(None, "/ckycportalapi/ckyc-upload/", reason)  # type: ignore[arg-type]


TRANSPORT_FAILURES: dict[str, tuple[Callable[[], Exception], type[KwikIDError]]] = {
    "connect timeout": (
        lambda: requests.exceptions.ConnectTimeout(_not_connected(ConnectTimeoutError("timed out"))),
        KwikIDConnectError,
    ),
    "dns failure": (
        lambda: requests.exceptions.ConnectionError(
            _not_connected(NameResolutionError("kwikid.test", None, socket.gaierror(-2, "unknown")))  # type: ignore[arg-type]
        ),
        KwikIDConnectError,
    ),
    "tls certificate rejected": (
        lambda: requests.exceptions.SSLError(
            _not_connected(Urllib3SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")))
        ),
        KwikIDConnectError,
    ),
    "read timeout": (
        lambda: requests.exceptions.ReadTimeout(ReadTimeoutError(None, "/", "Read timed out.")),  # type: ignore[arg-type]
        KwikIDUnknownOutcomeError,
    ),
    "stale pooled socket reset after the write": (
        lambda: requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
        ),
        KwikIDUnknownOutcomeError,
    ),
    "remote disconnected": (
        lambda: requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
        ),
        KwikIDUnknownOutcomeError,
    ),
    "answer cut off": (
        lambda: requests.exceptions.ChunkedEncodingError(ProtocolError("Response ended prematurely")),
        KwikIDUnknownOutcomeError,
    ),
    "request could not be built": (
        lambda: requests.exceptions.InvalidHeader("bad header"),
        KwikIDError,
    ),
}


@pytest.mark.parametrize("failure", TRANSPORT_FAILURES)
def test_transport_failures_map_to_their_outcome(failure: str) -> None:
    make_error, expected = TRANSPORT_FAILURES[failure]

    with pytest.raises(KwikIDError) as caught:
        _client_raising(make_error()).upload(sample_payload(1))

    assert type(caught.value) is expected
    assert TOKEN not in _texts(caught.value)


def test_earlier_connect_error_being_handled_does_not_mark_a_lost_connection_as_unsent() -> None:
    lost = _client_raising(
        requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", RemoteDisconnected("closed without response"))
        )
    )
    try:
        _client_raising(
            requests.exceptions.ConnectTimeout(_not_connected(ConnectTimeoutError("timed out")))
        ).upload(sample_payload(1))
    except KwikIDConnectError:
        # A retry loop calling upload() again from inside its except block.
        with pytest.raises(KwikIDUnknownOutcomeError):
            lost.upload(sample_payload(1))


# --- what errors reveal -------------------------------------------------------------------------------


def _wrong_token(standin: StandIn) -> None:
    standin.set_faults(token="rotated-token")


ERROR_SCENARIOS: dict[str, Callable[[StandIn], Any]] = {
    "401": _wrong_token,
    "400": lambda s: s.set_faults(fail_next=1, status=400, body='{"detail": {"pan": ["bad"]}}'),
    "500": lambda s: s.set_faults(fail_next=1, status=500),
    "429": lambda s: s.set_faults(fail_next=1, status=429, retry_after="2"),
    "307": lambda s: s.set_faults(fail_next=1, status=307, headers={"Location": s.url + UPLOAD_PATH}),
    "hang": lambda s: s.set_faults(hang_next=1, hang_seconds=3),
    "drop": lambda s: s.set_faults(drop_next=1),
}


@pytest.mark.parametrize("scenario", ERROR_SCENARIOS)
def test_error_text_never_contains_the_token_or_the_payload(standin: StandIn, scenario: str) -> None:
    ERROR_SCENARIOS[scenario](standin)
    payload = sample_payload(1, prefix="CUST-REF-")

    with (
        KwikIDClient(base_url=standin.url, token=TOKEN, read_timeout=0.5) as kwikid,
        pytest.raises(KwikIDError) as caught,
    ):
        kwikid.upload(payload)

    text = _texts(caught.value)
    assert TOKEN not in text
    assert PAN not in text
    assert "CUST-REF-" not in text


def test_connect_error_text_never_contains_the_token() -> None:
    with (
        KwikIDClient(base_url=f"http://127.0.0.1:{_free_port()}", token=TOKEN) as kwikid,
        pytest.raises(KwikIDConnectError) as caught,
    ):
        kwikid.upload(sample_payload(1))

    assert TOKEN not in _texts(caught.value)


def test_error_text_does_not_repeat_kwikid_messages_that_quote_pii(
    client: KwikIDClient, standin: StandIn
) -> None:
    echo = json.dumps({"detail": {"pan": [f"{PAN} is invalid"]}, "message": f"PAN {PAN} rejected"})
    standin.set_faults(fail_next=1, status=400, body=echo)

    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(sample_payload(1))

    assert PAN not in str(caught.value)
    assert PAN in caught.value.body  # kept for the record, not for logs


def test_errors_keep_their_attributes_through_pickling(client: KwikIDClient, standin: StandIn) -> None:
    payload = sample_payload(1)
    payload["records"][0]["pan"] = "bad"
    with pytest.raises(KwikIDRejectedError) as caught:
        client.upload(payload)

    copy = pickle.loads(pickle.dumps(caught.value))

    assert (copy.status_code, copy.detail, copy.message) == (400, caught.value.detail, "Validation failed")
    assert str(copy) == str(caught.value)


# --- construction -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["kwikid.test", "ftp://kwikid.test", "http://user:pw@kwikid.test", "http://kwikid.test/?a=1"]
)
def test_unusable_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        KwikIDClient(base_url=base_url, token=TOKEN)


def test_client_repr_does_not_show_the_token(client: KwikIDClient) -> None:
    assert TOKEN not in repr(client)


def test_payload_that_is_not_valid_json_is_refused_before_sending(
    client: KwikIDClient, standin: StandIn
) -> None:
    payload = sample_payload(1)
    payload["records"][0]["basic_details"]["disability_info"]["impairment_percentage"] = float("nan")

    with pytest.raises(ValueError):
        client.upload(payload)

    assert standin.stats()["requests"] == 0


def test_bytes_are_sent_exactly_as_given(client: KwikIDClient, standin: StandIn) -> None:
    body = json.dumps(sample_payload(2), indent=1).encode()  # not the client's own compact form
    client.upload(body)
    assert standin.stats()["last_request"]["body"] == json.loads(body)
    headers = {k.lower(): v for k, v in standin.stats()["last_request"]["headers"].items()}
    assert headers["content-length"] == str(len(body))


def test_process_session_is_one_per_thread_and_reuses_its_connection(standin: StandIn) -> None:
    import threading

    session = process_session()
    assert process_session() is session
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(process_session()))
    thread.start()
    thread.join()
    assert other[0] is not session

    def upload(prefix: str) -> str:
        kwikid = KwikIDClient(base_url=standin.url, token=TOKEN, session=process_session())
        kwikid.upload(sample_payload(1, prefix=prefix))
        kwikid.close()  # a shared session outlives the client
        return str(standin.stats()["last_request"]["client"])

    assert upload("A-") == upload("B-")


def test_process_session_opens_a_new_connection_after_sitting_idle(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwikid = KwikIDClient(base_url=standin.url, token=TOKEN, session=process_session())
    kwikid.upload(sample_payload(1, prefix="A-"))
    first = standin.stats()["last_request"]["client"]
    monkeypatch.setattr(client_module, "KEEPALIVE_REUSE_SECONDS", 0.0)
    time.sleep(0.01)
    kwikid.upload(sample_payload(1, prefix="B-"))
    assert standin.stats()["last_request"]["client"] != first


@pytest.fixture
def fresh_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The client's reading of the environment (proxies, CA bundle), forgotten before and after."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    client_module._environment.cache_clear()
    yield monkeypatch
    client_module._environment.cache_clear()


def test_a_proxy_named_in_the_environment_carries_the_upload(
    standin: StandIn, fresh_environment: pytest.MonkeyPatch
) -> None:
    # KwikID's name does not resolve here: only the proxy (the stand-in, which answers 404 to a request
    # for another host's URL) can be reached.
    fresh_environment.setenv("HTTP_PROXY", standin.url)
    kwikid = KwikIDClient(base_url="http://kwikid.invalid", token=TOKEN, connect_timeout=2)
    with kwikid, pytest.raises(KwikIDRejectedError) as refused:
        kwikid.upload(sample_payload(1))
    assert refused.value.status_code == 404


def test_no_proxy_in_the_environment_is_honoured(
    standin: StandIn, fresh_environment: pytest.MonkeyPatch
) -> None:
    fresh_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    fresh_environment.setenv("NO_PROXY", "127.0.0.1")
    with KwikIDClient(base_url=standin.url, token=TOKEN, connect_timeout=2) as kwikid:
        assert kwikid.upload(sample_payload(1)).status_code == 200


def test_the_ca_bundle_named_in_the_environment_checks_kwikids_certificate(
    fresh_environment: pytest.MonkeyPatch,
) -> None:
    assert client_module._environment("https://kwikid.example/") == ({}, True)
    client_module._environment.cache_clear()
    fresh_environment.setenv("CURL_CA_BUNDLE", "/etc/bank/curl.pem")
    fresh_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/bank/ca.pem")
    assert client_module._environment("https://kwikid.example/") == ({}, "/etc/bank/ca.pem")


def test_the_environment_is_read_once_per_address_not_on_every_request(
    client: KwikIDClient, standin: StandIn, fresh_environment: pytest.MonkeyPatch
) -> None:
    """requests reads the proxy variables and checks the CA bundle's path on every call (about 0.6 ms of
    CPU, a third of a search's own); the client's session does not, and ignores .netrc."""
    assert client._session.trust_env is False
    assert process_session().trust_env is False
    client_module._environment.cache_clear()
    with KwikIDClient(base_url=standin.url, token=TOKEN) as kwikid:
        kwikid.upload(sample_payload(1))
        kwikid.upload(sample_payload(1))
    assert client_module._environment.cache_info().misses == 1
