"""The stand-in's CKYC search over real HTTP: the registry it plays, its shapes and its fault controls."""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kwikid_standin import SEARCH_PATH, UPLOAD_PATH, StandIn, kin_for, sample_payload
from kwikid_standin.server import IST
from tests.kwikid_standin.test_server import PROJECT_ROOT, TOKEN, _call

PAN = "ABCDE1234F"  # the PAN of every record sample_payload builds
OTHER_PAN = "PQRST6789Z"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        yield server


def _search(
    standin: StandIn, pan: str = PAN, token: str | None = TOKEN, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    return _call(standin.url, "POST", SEARCH_PATH, body or {"id_type": "C", "id_no": pan}, token=token)


def _upload(standin: StandIn) -> None:
    status, _, _ = _call(standin.url, "POST", UPLOAD_PATH, sample_payload(1))
    assert status == 200


def _today_ist() -> datetime.date:
    return datetime.datetime.now(IST).date()


# --- the registry it plays ----------------------------------------------------------------------------


def test_a_pan_never_uploaded_is_not_found(standin: StandIn) -> None:
    status, _, answer = _search(standin)

    assert status == 200
    assert answer == {"CKYC_NO": "", "REMARKS": "Record does not exist"}


def test_an_uploaded_pan_is_registered_at_once_by_default_with_todays_kyc_date(standin: StandIn) -> None:
    _upload(standin)

    status, _, answer = _search(standin)

    assert status == 200
    assert answer["CKYC_NO"] == kin_for(PAN)
    assert answer["KYC_DATE"] == _today_ist().strftime("%d-%m-%Y")
    assert answer["UPDATED_DATE"] == answer["KYC_DATE"]


def test_a_flat_answer_carries_a_name_and_a_photo_as_the_registry_does(standin: StandIn) -> None:
    _upload(standin)

    _, _, answer = _search(standin)

    assert answer["NAME"] and answer["FATHERS_NAME"]
    assert base64.b64decode(answer["PHOTO"]).startswith(b"\xff\xd8")  # a JPEG's first bytes
    assert answer["ID_LIST"][0]["ID_NO"] == "XXXXXX234F"  # the registry shows only the last 4 since 2025


def test_the_kin_is_fourteen_digits_and_the_same_for_the_same_pan() -> None:
    assert kin_for(PAN) == kin_for(PAN)
    assert kin_for(PAN) != kin_for(OTHER_PAN)
    assert len(kin_for(PAN)) == 14 and kin_for(PAN).isdigit()


def test_registration_waits_register_after_seconds_after_acceptance() -> None:
    with StandIn(token=TOKEN, register_after_seconds=0.6) as standin:
        _upload(standin)
        before = _search(standin)[2]
        time.sleep(0.8)
        after = _search(standin)[2]

    assert before["CKYC_NO"] == "" and before["REMARKS"] == "Record does not exist"
    assert after["CKYC_NO"] == kin_for(PAN)


def test_register_after_seconds_is_a_fault_control_and_reset_restores_the_start_value(
    standin: StandIn,
) -> None:
    standin.set_faults(register_after_seconds=3600)
    _upload(standin)
    assert _search(standin)[2]["CKYC_NO"] == ""

    standin.set_faults(register_after_seconds=0)
    assert _search(standin)[2]["CKYC_NO"] == kin_for(PAN)

    standin.reset()
    assert _search(standin)[2]["CKYC_NO"] == ""  # reset also forgets the uploads
    _upload(standin)
    assert _search(standin)[2]["CKYC_NO"] == kin_for(PAN)


# --- shapes -------------------------------------------------------------------------------------------


def test_nested_shape_found_and_not_found(standin: StandIn) -> None:
    standin.set_faults(search_shape="nested")
    missing = _search(standin)
    _upload(standin)
    status, _, found = _search(standin)

    assert missing[0] == 200
    assert missing[2]["success"] is False and missing[2]["message"] == "No record found"
    assert status == 200 and found["success"] is True
    data = found["data"]["ckyc_search_data"]
    assert data["ckyc_id"] == kin_for(PAN)
    assert data["kyc_date"] == _today_ist().isoformat()
    assert data["photo"] and data["full_name"]


def test_ckyc_number_shape_found_and_not_found_as_422(standin: StandIn) -> None:
    standin.set_faults(search_shape="ckyc_number")
    missing = _search(standin)
    _upload(standin)
    status, _, found = _search(standin)

    assert (missing[0], missing[2]) == (422, {"error": "record not found"})
    assert status == 200
    assert found["ckyc_number"] == kin_for(PAN)
    assert found["kyc_date"] == _today_ist().strftime("%d-%m-%Y")


def test_an_unknown_shape_is_refused(standin: StandIn) -> None:
    with pytest.raises(ValueError, match="search_shape"):
        standin.set_faults(search_shape="xml")


# --- fault controls -----------------------------------------------------------------------------------


def test_a_pan_set_never_to_register_stays_not_found(standin: StandIn) -> None:
    standin.set_faults(never_register=[PAN])
    _upload(standin)

    assert _search(standin)[2]["CKYC_NO"] == ""


def test_a_preregistered_pan_is_found_before_any_upload_with_the_older_kyc_date(standin: StandIn) -> None:
    standin.set_faults(preregistered=[OTHER_PAN])

    _, _, answer = _search(standin, OTHER_PAN)

    assert answer["CKYC_NO"] == kin_for(OTHER_PAN)
    assert answer["KYC_DATE"] == "01-04-2019"
    standin.set_faults(preregistered_kyc_date="2021-07-15")
    assert _search(standin, OTHER_PAN)[2]["KYC_DATE"] == "15-07-2021"


@pytest.mark.parametrize("status", [401, 403, 500, 502, 503])
def test_search_status_answers_every_search_with_it_until_cleared(standin: StandIn, status: int) -> None:
    _upload(standin)
    standin.set_faults(search_status=status)

    first, second = _search(standin)[0], _search(standin)[0]
    standin.set_faults(search_status=None)
    cleared = _search(standin)

    assert (first, second) == (status, status)
    assert cleared[0] == 200 and cleared[2]["CKYC_NO"] == kin_for(PAN)


def test_a_500_is_an_html_page(standin: StandIn) -> None:
    standin.set_faults(search_status=500)

    status, headers, answer = _search(standin)

    assert status == 500
    assert headers["content-type"].startswith("text/html")
    assert "<h1>500" in answer


def test_the_search_checks_the_bearer_token(standin: StandIn) -> None:
    wrong = _search(standin, token="wrong")
    missing = _search(standin, token=None)
    standin.set_faults(token="replaced")
    after_replacement = _search(standin, token="replaced")

    assert wrong[0] == 401 and wrong[1]["www-authenticate"] == "Bearer"
    assert missing[0] == 401
    assert after_replacement[0] == 200


def test_search_delay_holds_each_answer(standin: StandIn) -> None:
    standin.set_faults(search_delay=0.5)

    started = time.monotonic()
    status = _search(standin)[0]

    assert status == 200
    assert time.monotonic() - started >= 0.5


def test_an_unreadable_answer_is_a_200_in_no_known_shape(standin: StandIn) -> None:
    _upload(standin)
    standin.set_faults(search_unreadable=True)

    status, _, answer = _search(standin)

    assert status == 200
    assert not {"CKYC_NO", "ckyc_number", "data"} & set(answer)
    assert answer["id_no"] == PAN  # it quotes the PAN: the portal must mask what it keeps


def test_the_daily_cap_answers_429_with_retry_after_until_the_next_day(standin: StandIn) -> None:
    standin.set_faults(search_daily_cap=2)

    statuses = [_search(standin)[0] for _ in range(2)]
    status, headers, answer = _search(standin)

    assert statuses == [200, 200]
    assert status == 429
    assert 0 < int(headers["retry-after"]) <= 86400
    assert answer["message"] == "Daily search limit reached"
    standin.set_faults(search_daily_cap=None)
    assert _search(standin)[0] == 200


def test_a_malformed_search_is_400_without_the_value(standin: StandIn) -> None:
    status, _, answer = _search(standin, body={"id_type": "A", "id_no": "abcde1234f"})

    assert status == 400
    assert set(answer["detail"]) == {"id_type", "id_no"}
    assert "abcde1234f" not in str(answer)


@pytest.mark.parametrize(
    "faults",
    [
        {"never_register": "ABCDE1234F"},
        {"preregistered": ["abcde1234f"]},
        {"preregistered_kyc_date": "01-04-2019"},
        {"search_status": 99},
        {"search_delay": -1},
        {"search_unreadable": "yes"},
        {"search_daily_cap": -1},
        {"register_after_seconds": "soon"},
    ],
)
def test_bad_search_controls_are_refused(standin: StandIn, faults: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(faults))):
        standin.set_faults(**faults)


def test_stats_count_searches_and_their_answers(standin: StandIn) -> None:
    _search(standin)
    _upload(standin)
    _search(standin)
    _search(standin, token="wrong")

    stats = standin.stats()
    assert stats["searches"] == 3
    assert stats["search_answers"] == {"not_found": 1, "found": 1, "unauthorized": 1}
    assert stats["requests"] == 1  # the upload calls alone, as before
    standin.reset()
    assert standin.stats()["searches"] == 0


def test_get_on_the_search_path_is_405(standin: StandIn) -> None:
    status, headers, _ = _call(standin.url, "GET", SEARCH_PATH)

    assert status == 405
    assert headers["allow"] == "POST"


def test_cli_takes_register_after_seconds() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kwikid_standin", "--port", "0", "--register-after-seconds", "3600"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, KWIKID_STANDIN_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ", 1)[1].split()[0]
        assert _call(url, "POST", UPLOAD_PATH, sample_payload(1))[0] == 200
        status, _, answer = _call(url, "POST", SEARCH_PATH, {"id_type": "C", "id_no": PAN})
    finally:
        process.terminate()
        process.communicate(timeout=10)

    assert status == 200
    assert answer["CKYC_NO"] == ""  # accepted, not yet registered: an hour to go


# --- per-record results in an upload's 200 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "key", "position"),
    [("list", "records", 1), ("index", "results", "1"), ("ref", "data", "REF-000001")],
)
def test_record_failures_make_a_200_carry_per_record_results(
    standin: StandIn, shape: str, key: str, position: Any
) -> None:
    standin.set_faults(record_failures=["REF-000001"], record_results_shape=shape)

    status, _, answer = _call(standin.url, "POST", UPLOAD_PATH, sample_payload(3))

    assert status == 200
    assert answer["message"] == "2 records accepted for processing"
    entry = answer[key][position]
    assert entry["status"] == "failed" and entry["error"]
    stats = standin.stats()
    assert stats["accepted_records"] == 2
    assert "REF-000001" not in stats["accepted"]


def test_a_failed_record_is_never_registered(standin: StandIn) -> None:
    standin.set_faults(record_failures=["REF-000000"])
    _upload(standin)

    assert _search(standin)[2]["CKYC_NO"] == ""


def test_an_upload_naming_no_failing_record_is_a_plain_200(standin: StandIn) -> None:
    standin.set_faults(record_failures=["ELSEWHERE"])

    _, _, answer = _call(standin.url, "POST", UPLOAD_PATH, sample_payload(2))

    assert answer == {"message": "2 records accepted for processing", "status": "success"}


@pytest.mark.parametrize("faults", [{"record_failures": "REF-1"}, {"record_results_shape": "table"}])
def test_bad_record_result_controls_are_refused(standin: StandIn, faults: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(faults))):
        standin.set_faults(**faults)
