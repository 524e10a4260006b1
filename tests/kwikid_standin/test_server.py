"""The KwikID stand-in over real HTTP, driven with the standard library only (no requests, no database)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kwikid_standin import UPLOAD_PATH, StandIn, sample_payload

TOKEN = "standin-test-token"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


def _connect(url: str, timeout: float = 5) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def _call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request; returns status, headers (lower-case names) and the JSON (or text) answer."""
    conn = connection or _connect(url)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    answer_headers = {name.lower(): value for name, value in response.getheaders()}
    if connection is None:
        conn.close()
    try:
        return response.status, answer_headers, json.loads(text)
    except ValueError:
        return response.status, answer_headers, text


def _upload(standin: StandIn, body: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    status, _, answer = _call(standin.url, "POST", UPLOAD_PATH, body, token=token)
    return status, answer


# --- upload: success and bookkeeping ------------------------------------------------------------------


def test_valid_upload_is_accepted_and_counted(standin: StandIn) -> None:
    status, answer = _upload(standin, sample_payload(3))

    assert status == 200
    assert answer == {"message": "3 records accepted for processing", "status": "success"}
    stats = standin.stats()
    assert (stats["requests"], stats["accepted_records"], stats["duplicates"]) == (1, 3, 0)
    assert stats["accepted"] == {"REF-000000": 1, "REF-000001": 1, "REF-000002": 1}


def test_one_record_is_one_record(standin: StandIn) -> None:
    assert _upload(standin, sample_payload(1))[1]["message"] == "1 record accepted for processing"


def test_duplicates_counts_refs_accepted_more_than_once(standin: StandIn) -> None:
    _upload(standin, sample_payload(2))
    _upload(standin, sample_payload(2))
    _upload(standin, sample_payload(1))

    stats = standin.stats()
    assert stats["accepted_records"] == 5
    assert stats["accepted"] == {"REF-000000": 3, "REF-000001": 2}
    assert stats["duplicates"] == 2


def test_stats_show_the_last_request_headers_and_body(standin: StandIn) -> None:
    payload = sample_payload(1)
    _upload(standin, payload)

    last = standin.stats()["last_request"]
    assert last["method"] == "POST"
    assert last["path"] == UPLOAD_PATH
    assert last["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert last["body"] == payload


def test_concurrent_uploads_are_all_counted(standin: StandIn) -> None:
    def send(worker: int) -> None:
        for batch in range(10):
            _upload(standin, sample_payload(5, prefix=f"W{worker}-B{batch}-"))

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = standin.stats()
    assert (stats["requests"], stats["accepted_records"], stats["duplicates"]) == (80, 400, 0)


def test_keep_alive_serves_several_requests_on_one_connection(standin: StandIn) -> None:
    conn = _connect(standin.url)
    try:
        for index in range(3):
            status, headers, _ = _call(
                standin.url, "POST", UPLOAD_PATH, sample_payload(1, prefix=f"K{index}-"), connection=conn
            )
            assert status == 200
            assert "content-length" in headers
            assert headers.get("connection", "").lower() != "close"
    finally:
        conn.close()
    assert standin.stats()["accepted_records"] == 3


# --- upload: auth and validation ----------------------------------------------------------------------


def test_missing_authorization_is_401_with_detail(standin: StandIn) -> None:
    status, headers, answer = _call(standin.url, "POST", UPLOAD_PATH, sample_payload(1), token=None)

    assert status == 401
    assert answer["message"] == "Invalid token"
    assert set(answer["detail"]) == {"authorization"}
    assert headers["www-authenticate"] == "Bearer"
    assert standin.stats()["accepted_records"] == 0


def test_wrong_token_is_401(standin: StandIn) -> None:
    status, answer = _upload(standin, sample_payload(1), token="wrong")

    assert status == 401
    assert answer["message"] == "Invalid token"


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b""])
def test_body_that_is_not_a_json_object_is_400(standin: StandIn, raw: bytes) -> None:
    status, _, answer = _call(standin.url, "POST", UPLOAD_PATH, raw=raw)

    assert status == 400
    assert list(answer["detail"]) == ["body"]


def test_missing_top_level_fields_are_reported_by_name(standin: StandIn) -> None:
    status, answer = _upload(standin, {"fi_code": " "})

    assert status == 400
    assert answer["message"] == "Validation failed"
    assert set(answer["detail"]) == {
        "fi_code",
        "version",
        "region_code",
        "username",
        "branch_code",
        "records",
    }
    assert answer["detail"]["fi_code"] == ["This field may not be blank."]


@pytest.mark.parametrize("records", [[], "REF-1", None])
def test_records_must_be_a_non_empty_list(standin: StandIn, records: Any) -> None:
    payload = sample_payload(1)
    payload["records"] = records

    status, answer = _upload(standin, payload)

    assert status == 400
    assert list(answer["detail"]) == ["records"]


def test_invalid_records_are_reported_by_path_and_nothing_is_accepted(standin: StandIn) -> None:
    payload = sample_payload(4)
    first, second, third, _ = payload["records"]
    first["pan"] = "abcde1234f"
    first["basic_details"]["gender"] = "X"
    first["basic_details"]["applicant_rel_details_flag"] = "MOTHER"
    first["basic_details"]["dob"] = "31-01-1990"
    del first["poa"]["poa_vtc"]
    second["current_address"]["current_address_same_as_poa_address"] = "Yes"
    second["kyc_verification_details"]["kyc_declaration_date"] = "2024-02-30"
    second["kyc_verification_details"]["kyc_verifier_name"] = ""
    del second["contact_details"]
    third["basic_details"] = "not an object"
    payload["records"][3] = ["not", "an", "object"]

    status, answer = _upload(standin, payload)

    assert status == 400
    assert set(answer["detail"]) == {
        "records[0].pan",
        "records[0].basic_details.gender",
        "records[0].basic_details.applicant_rel_details_flag",
        "records[0].basic_details.dob",
        "records[0].poa.poa_vtc",
        "records[1].current_address.current_address_same_as_poa_address",
        "records[1].kyc_verification_details.kyc_declaration_date",
        "records[1].kyc_verification_details.kyc_verifier_name",
        "records[1].contact_details",
        "records[2].basic_details",
        "records[3]",
    }
    assert all(isinstance(messages, list) and messages for messages in answer["detail"].values())
    stats = standin.stats()
    assert (stats["accepted_records"], stats["accepted"]) == (0, {})


def test_missing_record_keys_are_each_required(standin: StandIn) -> None:
    payload = sample_payload(1)
    payload["records"] = [{}]

    _, answer = _upload(standin, payload)

    assert set(answer["detail"]) == {
        f"records[0].{key}"
        for key in (
            "kyc_ref_no",
            "pan",
            "basic_details",
            "poa",
            "current_address",
            "contact_details",
            "kyc_verification_details",
        )
    }


def test_repeated_kyc_ref_no_within_a_request_is_400(standin: StandIn) -> None:
    payload = sample_payload(3)
    payload["records"][2]["kyc_ref_no"] = payload["records"][0]["kyc_ref_no"]

    status, answer = _upload(standin, payload)

    assert status == 400
    assert list(answer["detail"]) == ["records[2].kyc_ref_no"]
    assert standin.stats()["accepted_records"] == 0


def test_validation_messages_do_not_echo_submitted_values(standin: StandIn) -> None:
    payload = sample_payload(1)
    payload["records"][0]["pan"] = "ZZZZZ9999"

    _, _, answer = _call(standin.url, "POST", UPLOAD_PATH, payload)

    assert "ZZZZZ9999" not in json.dumps(answer)


# --- faults -------------------------------------------------------------------------------------------


def test_fail_next_answers_the_configured_failure_then_recovers(standin: StandIn) -> None:
    standin.set_faults(fail_next=2, status=503)

    answers = [_call(standin.url, "POST", UPLOAD_PATH, sample_payload(1)) for _ in range(3)]

    assert [status for status, _, _ in answers] == [503, 503, 200]
    assert answers[0][1]["content-type"].startswith("text/html")
    assert answers[0][2].startswith("<html>")
    stats = standin.stats()
    assert (stats["requests"], stats["accepted_records"]) == (3, 1)


def test_fail_next_sends_custom_body_type_and_retry_after(standin: StandIn) -> None:
    standin.set_faults(fail_next=1, status=429, retry_after="2", body='{"message": "slow down"}')

    status, headers, answer = _call(standin.url, "POST", UPLOAD_PATH, sample_payload(1))

    assert status == 429
    assert headers["retry-after"] == "2"
    assert headers["content-type"] == "application/json"
    assert answer == {"message": "slow down"}


def test_drop_next_closes_without_answer_and_accepts_nothing(standin: StandIn) -> None:
    standin.set_faults(drop_next=1)

    with pytest.raises(http.client.RemoteDisconnected):
        _upload(standin, sample_payload(1))

    stats = standin.stats()
    assert (stats["requests"], stats["accepted_records"]) == (1, 0)
    assert _upload(standin, sample_payload(1))[0] == 200


def test_accept_then_drop_counts_the_records_but_sends_no_answer(standin: StandIn) -> None:
    standin.set_faults(accept_then_drop_next=1)

    with pytest.raises(http.client.RemoteDisconnected):
        _upload(standin, sample_payload(2))
    _upload(standin, sample_payload(2))  # the portal resending blindly

    stats = standin.stats()
    assert stats["accepted_records"] == 4
    assert stats["duplicates"] == 2


def test_hang_next_holds_the_connection_then_closes_without_answer(standin: StandIn) -> None:
    standin.set_faults(hang_next=1, hang_seconds=0.3)
    started = time.monotonic()

    with pytest.raises(http.client.RemoteDisconnected):
        _upload(standin, sample_payload(1))

    assert 0.3 <= time.monotonic() - started < 2
    assert standin.stats()["accepted_records"] == 0


def test_delay_applies_to_every_upload_until_reset(standin: StandIn) -> None:
    standin.set_faults(delay=0.2)

    for _ in range(2):
        started = time.monotonic()
        assert _upload(standin, sample_payload(1))[0] == 200
        assert time.monotonic() - started >= 0.2

    standin.reset()
    started = time.monotonic()
    _upload(standin, sample_payload(1))
    assert time.monotonic() - started < 0.2


def test_latency_ms_given_at_start_delays_uploads() -> None:
    with StandIn(token=TOKEN, latency_ms=150) as server:
        started = time.monotonic()
        _upload(server, sample_payload(1))

        assert time.monotonic() - started >= 0.15


def test_token_fault_replaces_the_accepted_token_and_survives_reset(standin: StandIn) -> None:
    standin.set_faults(token="rotated")

    assert _upload(standin, sample_payload(1))[0] == 401
    assert _upload(standin, sample_payload(1), token="rotated")[0] == 200
    standin.reset()
    assert standin.token == "rotated"
    assert _upload(standin, sample_payload(1), token="rotated")[0] == 200


def test_reset_clears_faults_and_stats(standin: StandIn) -> None:
    _upload(standin, sample_payload(1))
    standin.set_faults(fail_next=5, drop_next=5, hang_next=5, accept_then_drop_next=5)

    standin.reset()

    stats = standin.stats()
    assert stats == {
        "requests": 0,
        "service_seconds": 0.0,
        "accepted_records": 0,
        "duplicates": 0,
        "accepted": {},
        "last_request": None,
        "searches": 0,
        "search_answers": {},
        "uploaded_pans": 0,
    }
    assert _upload(standin, sample_payload(1))[0] == 200


def test_set_faults_rejects_unknown_or_malformed_settings(standin: StandIn) -> None:
    with pytest.raises(ValueError, match="bogus"):
        standin.set_faults(bogus=1)
    with pytest.raises(ValueError, match="fail_next"):
        standin.set_faults(fail_next=-1)


def test_stop_wakes_a_hanging_handler() -> None:
    server = StandIn(token=TOKEN).start()
    server.set_faults(hang_next=1, hang_seconds=60)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            _upload(server, sample_payload(1))
        except (http.client.HTTPException, OSError) as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while server.stats()["requests"] == 0:
        time.sleep(0.01)

    started = time.monotonic()
    server.stop()
    caller.join(timeout=5)

    assert time.monotonic() - started < 3
    assert not caller.is_alive()
    assert len(outcome) == 1  # closed without an answer


# --- control endpoints --------------------------------------------------------------------------------


def test_control_endpoints_work_over_http_without_auth(standin: StandIn) -> None:
    status, _, answer = _call(standin.url, "POST", "/_standin/faults", {"fail_next": 1, "status": 500}, None)
    assert status == 200
    assert answer["faults"]["fail_next"] == 1
    assert "token" not in json.dumps(answer)

    assert _upload(standin, sample_payload(1))[0] == 500

    status, _, stats = _call(standin.url, "GET", "/_standin/stats", token=None)
    assert status == 200
    assert set(stats) == {
        "requests",
        "service_seconds",
        "accepted_records",
        "duplicates",
        "accepted",
        "last_request",
        "searches",
        "search_answers",
        "uploaded_pans",
    }
    assert stats["requests"] == 1

    status, _, _ = _call(standin.url, "POST", "/_standin/reset", token=None)
    assert status == 200
    assert standin.stats()["requests"] == 0


def test_faults_endpoint_reports_bad_settings_as_400(standin: StandIn) -> None:
    status, _, answer = _call(standin.url, "POST", "/_standin/faults", {"drop_next": "two", "nope": 1})

    assert status == 400
    assert set(answer["detail"]) == {"drop_next", "nope"}


def test_unknown_path_is_404_json(standin: StandIn) -> None:
    status, headers, answer = _call(standin.url, "GET", "/nowhere")

    assert status == 404
    assert headers["content-type"] == "application/json"
    assert answer["message"] == "Not found"


def test_get_on_the_upload_path_is_405(standin: StandIn) -> None:
    status, headers, _ = _call(standin.url, "GET", UPLOAD_PATH)

    assert status == 405
    assert headers["allow"] == "POST"


# --- an extra record check (the benchmark's: the portal's own rules) ---------------------------------


def _no_odd_pans(records: list[Any]) -> dict[str, list[str]]:
    return {
        f"records[{index}].pan": ["Odd PAN."]
        for index, record in enumerate(records)
        if record["pan"][-2] in "13579"
    }


def test_record_check_refuses_the_whole_upload_with_its_detail() -> None:
    payload = sample_payload(2)
    payload["records"][1]["pan"] = "ABCDE1239F"
    with StandIn(token=TOKEN, record_check=_no_odd_pans) as server:
        status, answer = _upload(server, payload)
        stats = server.stats()

    assert status == 400
    assert answer == {"detail": {"records[1].pan": ["Odd PAN."]}, "message": "Validation failed"}
    assert stats["accepted_records"] == 0


def test_record_check_passes_valid_records_and_is_off_by_default(standin: StandIn) -> None:
    payload = sample_payload(1)
    payload["records"][0]["pan"] = "ABCDE1239F"
    with StandIn(token=TOKEN, record_check=lambda records: {}) as server:
        assert _upload(server, sample_payload(2))[0] == 200
    assert _upload(standin, payload)[0] == 200  # no check given: only the shape is checked


def test_service_seconds_add_up_the_time_spent_processing_uploads() -> None:
    def slow(records: list[Any]) -> dict[str, list[str]]:
        time.sleep(0.05)
        return {}

    with StandIn(token=TOKEN, record_check=slow) as server:
        for _ in range(2):
            assert _upload(server, sample_payload(1))[0] == 200
        assert 0.1 <= server.stats()["service_seconds"] < 2
        server.reset()
        assert server.stats()["service_seconds"] == 0.0


def test_cli_loads_the_record_check_it_is_given() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kwikid_standin",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--validate-records",
            "tests.kwikid_standin.test_server:_no_odd_pans",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ", 1)[1].split()[0]
        payload = sample_payload(1)
        payload["records"][0]["pan"] = "ABCDE1239F"
        status, _, answer = _call(url, "POST", UPLOAD_PATH, payload)
    finally:
        process.terminate()
        process.communicate(timeout=10)

    assert status == 400
    assert answer["detail"] == {"records[0].pan": ["Odd PAN."]}


def test_cli_refuses_a_record_check_without_a_function_name() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "kwikid_standin", "--port", "0", "--validate-records", "bench.standin_rules"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert completed.returncode != 0
    assert "MODULE:FUNCTION" in completed.stderr


# --- packaging and CLI --------------------------------------------------------------------------------


def test_server_imports_neither_requests_nor_django() -> None:
    code = (
        "import sys, kwikid_standin.server, kwikid_standin.__main__\n"
        "loaded = {'requests', 'django'} & {name.split('.')[0] for name in sys.modules}\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=False, timeout=30)

    assert completed.returncode == 0


def test_cli_prints_where_it_listens_and_takes_the_token_from_env() -> None:
    env = dict(os.environ, KWIKID_STANDIN_TOKEN="env-token")
    process = subprocess.Popen(
        [sys.executable, "-m", "kwikid_standin", "--host", "127.0.0.1", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        status, _, _ = _call(url, "POST", UPLOAD_PATH, sample_payload(1), token="env-token")
        assert status == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert process.returncode == 0
    assert "env-token" not in line
    assert "ABCDE1234F" not in stderr  # nothing from the request body is ever logged
