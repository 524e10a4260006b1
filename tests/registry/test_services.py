"""The checking pass with a fake search client: each answer's outcome, the schedule, the cap, the claims,
the pause on a refused token, and "check now"."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from ckycportal.crypto import keyed_hash
from ckycportal.errors import ActionRefused
from institutions.models import AuditEvent, Branch, Institution, Role, User
from kwikid.client import (
    KwikIDAuthError,
    KwikIDConnectError,
    KwikIDRateLimitedError,
    KwikIDRejectedError,
    KwikIDServerError,
    KwikIDUnknownOutcomeError,
)
from records.models import KycRecord, RecordEvent, Status
from registry import services
from registry.models import Outcome, RegistryCheck, SearchAttempt, SearchDay
from tests.conftest import approved_record, copy_record, make_user
from uploads import services as upload_services
from uploads.institution import institution_configure

from .conftest import (
    KIN,
    FakeSearch,
    found,
    later,
    not_found,
    pan_for,
    unreadable,
    uploaded_record,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_timings")]

FIRST = 600  # REGISTRY_FIRST_CHECK_SECONDS in these tests


def check_of(record: KycRecord) -> RegistryCheck:
    return RegistryCheck.objects.get(record=record)


# --- found -----------------------------------------------------------------------------------------


def test_a_kin_dated_after_the_upload_registers_the_record(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    summary = services.registrations_check(now=later(FIRST + 1))
    record.refresh_from_db()
    assert record.status == Status.REGISTERED
    assert summary.found == [record.kyc_ref_no]
    assert summary.outcomes == {Outcome.REGISTERED: 1} and summary.searched == 1
    assert record.ckyc_number == KIN and record.ckyc_number_hash == keyed_hash(KIN)
    assert record.registry_kyc_date == timezone.localdate() and record.registered_at is not None
    assert record.registration_note.startswith("By the scheduled check")
    event = record.events.get(action=RecordEvent.Action.REGISTERED)
    assert (event.from_status, event.to_status, event.actor) == (Status.UPLOADED, Status.REGISTERED, None)
    assert KIN not in event.reason
    check = check_of(record)
    assert check.next_check_at is None and check.last_outcome == Outcome.REGISTERED
    assert check.checks_made == 1 and check.claimed_until is None
    (attempt,) = SearchAttempt.objects.all()
    assert (attempt.outcome, attempt.status_code, attempt.elapsed_ms) == (Outcome.REGISTERED, 200, 12)
    assert KIN not in attempt.note


def test_the_kin_is_encrypted_at_rest(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    services.registrations_check(now=later(FIRST + 1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT ckyc_number FROM records_kycrecord WHERE id = %s", [record.pk])
        (stored,) = cursor.fetchone()
    assert stored and KIN not in stored


def test_a_kin_dated_before_the_upload_day_is_registered_before_upload(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate() - timedelta(days=400)))
    summary = services.registrations_check(now=later(FIRST + 1))
    record.refresh_from_db()
    assert record.status == Status.PREEXISTING
    assert summary.outcomes == {Outcome.PREEXISTING: 1} and summary.found == [record.kyc_ref_no]
    assert (
        record.events.filter(action=RecordEvent.Action.PREEXISTING, to_status=Status.PREEXISTING).count() == 1
    )
    assert check_of(record).next_check_at is None


def test_a_kin_without_a_kyc_date_counts_as_registered(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(record.pan, found(kyc_date=None))
    services.registrations_check(now=later(FIRST + 1))
    record.refresh_from_db()
    assert record.status == Status.REGISTERED and record.registry_kyc_date is None
    assert "no KYC date" in record.registration_note


# --- the schedule ----------------------------------------------------------------------------------


def test_nothing_is_searched_before_the_first_delay(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    assert services.registrations_check(now=later(FIRST - 5)).searched == 0
    assert fake_search.calls[record.pan] == 0
    check = check_of(record)
    assert check.next_check_at == record.uploaded_at + timedelta(seconds=FIRST)


def test_each_wait_is_three_times_the_one_before_up_to_the_maximum(settings: Any) -> None:
    uploaded = timezone.now()
    waits = []
    for made in range(1, 9):
        at = uploaded + timedelta(days=1)
        next_at = services.next_check_time(uploaded_at=uploaded, checks_made=made, now=at, check_days=30)
        assert next_at is not None
        waits.append((next_at - at).total_seconds())
    assert waits == [1800, 5400, 16200, 48600, 145800, 172800, 172800, 172800]


def test_not_found_backs_off_pass_after_pass(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    first = later(FIRST + 1)
    assert services.registrations_check(now=first).outcomes == {Outcome.NOT_FOUND: 1}
    check = check_of(record)
    assert check.checks_made == 1 and check.next_check_at == first + timedelta(seconds=3 * FIRST)
    # Not yet due a second before; due at the time set.
    assert services.registrations_check(now=check.next_check_at - timedelta(seconds=1)).searched == 0
    second = check.next_check_at
    assert services.registrations_check(now=second).searched == 1
    check.refresh_from_db()
    assert check.checks_made == 2 and check.next_check_at == second + timedelta(seconds=9 * FIRST)
    assert fake_search.calls[record.pan] == 2
    record.refresh_from_db()
    assert record.status == Status.UPLOADED
    assert list(SearchAttempt.objects.values_list("outcome", flat=True)) == [Outcome.NOT_FOUND] * 2


def test_checking_stops_after_the_institutions_days(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    institution.registration_check_days = 5
    institution.save()
    now = timezone.now()
    old = uploaded_record(alice, bob, branch_a, 1, at=now - timedelta(days=6))
    near = uploaded_record(alice, bob, branch_a, 2, at=now - timedelta(days=5) + timedelta(minutes=10))
    services.registrations_check(now=now)
    gone, last = check_of(old), check_of(near)
    # Past the days: searched once more, then given up.
    assert gone.gave_up_at == now and gone.next_check_at is None and gone.checks_made == 1
    # Within them: the next search falls on the last day of checking, not after it.
    assert last.gave_up_at is None and last.next_check_at == near.uploaded_at + timedelta(days=5)
    services.registrations_check(now=last.next_check_at)
    last.refresh_from_db()
    assert last.gave_up_at is not None and last.next_check_at is None
    assert services.registrations_check(now=now + timedelta(days=30)).searched == 0
    assert fake_search.calls[old.pan] == 1 and fake_search.calls[near.pan] == 2


# --- unreadable, failed, refused ------------------------------------------------------------------


def test_an_unreadable_answer_is_kept_masked_without_the_photo(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    photo = "iVBORw0KGgo" + "A" * 5000
    answer = {"PAN": record.pan, "NO": KIN, "MOBILE": "9876543210", "NAME": "RAVI KUMAR", "PHOTO": photo}
    answer["ATTACHMENT"] = photo  # base64 under a name that does not say what it is
    body = json.dumps({"RESULT": answer})
    fake_search.answer(record.pan, unreadable(body))
    summary = services.registrations_check(now=later(FIRST + 1))
    assert summary.outcomes == {Outcome.UNREADABLE: 1}
    (attempt,) = SearchAttempt.objects.all()
    assert attempt.outcome == Outcome.UNREADABLE and attempt.record_id == record.pk
    for secret in (record.pan, KIN, "9876543210", "RAVI KUMAR", "AAAAAAAAAA"):
        assert secret not in attempt.note
    assert '"PHOTO": [MASKED]' in attempt.note and '"NAME": [MASKED]' in attempt.note
    assert '"PAN": "[PAN]"' in attempt.note and '"ATTACHMENT": "[BASE64]"' in attempt.note
    assert len(attempt.note) <= 500
    check = check_of(record)
    assert check.last_outcome == Outcome.UNREADABLE and check.next_check_at is not None
    record.refresh_from_db()
    assert record.status == Status.UPLOADED


@pytest.mark.parametrize(
    ("error", "status_code"),
    [
        (KwikIDServerError("KwikID failed: HTTP 502", status_code=502, body="<html>bad gateway</html>"), 502),
        (KwikIDRateLimitedError("rate limited", status_code=429, retry_after=None), 429),
        (KwikIDConnectError("could not connect"), None),
        (KwikIDUnknownOutcomeError("no answer within the read timeout"), None),
    ],
)
def test_kwikid_unavailable_backs_off_and_is_recorded(
    fake_search: FakeSearch,
    alice: User,
    bob: User,
    branch_a: Branch,
    error: Exception,
    status_code: int | None,
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(record.pan, error)  # type: ignore[arg-type]
    at = later(FIRST + 1)
    summary = services.registrations_check(now=at)
    assert summary.outcomes == {Outcome.FAILED: 1}
    (attempt,) = SearchAttempt.objects.all()
    assert attempt.outcome == Outcome.FAILED and attempt.status_code == status_code
    check = check_of(record)
    assert check.checks_made == 1 and check.next_check_at == at + timedelta(seconds=3 * FIRST)
    assert check.claimed_until is None
    record.refresh_from_db()
    assert record.status == Status.UPLOADED


def test_a_rate_limit_stops_the_institutions_searches_for_the_pass(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.REGISTRY_SEARCH_THREADS = 1  # one search after another: the first 429 stops the rest
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 4)]
    fake_search.answer(records[0].pan, KwikIDRateLimitedError("429", status_code=429, retry_after=3600))
    summary = services.registrations_check(now=later(FIRST + 1))
    assert summary.searched == 1 and summary.skipped == {"Test Bank": "rate limited"}
    assert sum(fake_search.calls.values()) == 1
    # The others were let go, still due: the next pass takes them.
    for record in records[1:]:
        check = check_of(record)
        assert check.claimed_until is None and check.checks_made == 0
    assert services.registrations_check(now=later(FIRST + 2)).searched == 2


def test_searches_made_together_stop_after_the_wave_in_which_the_token_was_refused(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.REGISTRY_SEARCH_THREADS = 3
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 7)]
    fake_search.answer(records[0].pan, KwikIDAuthError("refused: HTTP 401", status_code=401))

    summary = services.registrations_check(now=later(FIRST + 1))

    # The first wave's three searches were made and are kept; the second wave was never sent.
    assert summary.outcomes == {Outcome.TOKEN_REFUSED: 1, Outcome.NOT_FOUND: 2}
    assert summary.skipped == {"Test Bank": "paused"}
    assert sorted(fake_search.calls.values()) == [1, 1, 1]
    assert [check_of(record).checks_made for record in records] == [0, 1, 1, 0, 0, 0]
    assert all(check_of(record).claimed_until is None for record in records)
    institution.refresh_from_db()
    assert institution.sending_paused_at is not None


def test_a_refused_search_backs_off_with_a_masked_note(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    fake_search.answer(
        record.pan,
        KwikIDRejectedError(
            "KwikID rejected: HTTP 400", status_code=400, message=f"id_no {record.pan} invalid"
        ),
    )
    assert services.registrations_check(now=later(FIRST + 1)).outcomes == {Outcome.REFUSED: 1}
    (attempt,) = SearchAttempt.objects.all()
    assert attempt.status_code == 400 and record.pan not in attempt.note
    assert check_of(record).next_check_at is not None


# --- a refused token --------------------------------------------------------------------------------


def test_a_refused_token_pauses_searches_and_uploads_until_it_is_replaced(
    fake_search: FakeSearch,
    institution: Institution,
    alice: User,
    bob: User,
    erin: User,
    branch_a: Branch,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.REGISTRY_SEARCH_THREADS = 1  # one search after another: the first 401 stops the rest
    erin.email = "erin@example.com"
    erin.save()
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 4)]
    fake_search.answer(records[0].pan, KwikIDAuthError("refused: HTTP 401", status_code=401), not_found())
    waiting = approved_record(alice, bob, branch_a, 9, pan=pan_for(9))
    at = later(FIRST + 1)
    with django_capture_on_commit_callbacks(execute=True):  # the admins' mail goes after commit
        summary = services.registrations_check(now=at)
    assert summary.outcomes == {Outcome.TOKEN_REFUSED: 1} and summary.skipped == {"Test Bank": "paused"}
    institution.refresh_from_db()
    assert institution.sending_paused_at is not None and "401" in institution.sending_paused_reason
    assert [m.to for m in mail.outbox] == [["erin@example.com"]]
    # The record keeps its place; the others were let go unsearched.
    for record in records:
        check = check_of(record)
        assert check.checks_made == 0 and check.claimed_until is None
        assert check.next_check_at == record.uploaded_at + timedelta(seconds=FIRST)
    # Paused: no search, and no upload either.
    assert services.registrations_check(now=at).skipped == {"Test Bank": "paused"}
    assert upload_services.batch_assemble() == []
    assert KycRecord.objects.get(pk=waiting.pk).status == Status.APPROVED
    assert sum(fake_search.calls.values()) == 1
    # A new token lifts the pause: searches and uploads go on.
    with django_capture_on_commit_callbacks(execute=False):
        institution_configure(actor=erin, institution=institution, data={}, token="a-new-token-0123")
    assert services.registrations_check(now=at).outcomes == {Outcome.NOT_FOUND: 3}
    assert len(upload_services.batch_assemble()) == 1


def test_an_upload_401_pauses_the_searches_too(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    uploaded_record(alice, bob, branch_a, 1)
    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason=services.TOKEN_REFUSED_REASON
    )
    summary = services.registrations_check(now=later(FIRST + 1))
    assert summary.searched == 0 and summary.skipped == {"Test Bank": "paused"}
    assert not fake_search.calls


# --- the daily cap ---------------------------------------------------------------------------------


def test_the_daily_cap_stops_the_searches_until_the_next_day(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.REGISTRY_CHECK_BATCH = 2
    institution.registration_daily_searches = 3
    institution.save()
    for n in range(1, 6):
        uploaded_record(alice, bob, branch_a, n)
    at = later(FIRST + 1)
    summary = services.registrations_check(now=at)
    assert summary.searched == 3 and summary.skipped == {"Test Bank": "cap"}
    assert services.searches_today(institution_id=institution.pk, now=at) == 3
    assert services.registrations_check(now=at).searched == 0
    assert RegistryCheck.objects.filter(checks_made=0).count() == 2
    # The next day (the cap counts the searches of each local day) three more: the two left first.
    tomorrow = timezone.localtime(at) + timedelta(days=1)
    assert services.registrations_check(now=tomorrow).searched == 3
    assert services.searches_today(institution_id=institution.pk, now=tomorrow) == 3
    assert not RegistryCheck.objects.filter(checks_made=0).exists()


def test_a_pass_counts_its_searches_against_the_day_it_counted_the_cap_with(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    # A pass given a moment on the next local day (as tests give one): its searches are kept at that
    # moment, so that day's count has them and today's does not, whatever the time of day the test runs at.
    for n in range(1, 3):
        uploaded_record(alice, bob, branch_a, n)
    at = timezone.localtime(later(FIRST + 1)) + timedelta(days=1)
    assert services.registrations_check(now=at).searched == 2
    assert services.searches_today(institution_id=institution.pk, now=at) == 2
    assert services.searches_today(institution_id=institution.pk, now=at - timedelta(days=1)) == 0


def test_a_cap_of_zero_stops_the_checks(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    institution.registration_daily_searches = 0
    institution.save()
    uploaded_record(alice, bob, branch_a, 1)
    summary = services.registrations_check(now=later(FIRST + 1))
    assert summary.searched == 0 and summary.skipped == {"Test Bank": "cap"}


def test_the_days_count_is_the_searches_kept_that_day(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    # The cap reads SearchDay, one row a day, not the day's searches: it must say what they say.
    settings.REGISTRY_CHECK_BATCH = 2
    for n in range(1, 6):
        uploaded_record(alice, bob, branch_a, n)
    at = later(FIRST + 1)
    services.registrations_check(now=at)
    tomorrow = timezone.localtime(at) + timedelta(days=1)
    services.registrations_check(now=tomorrow)  # not found: searched again on a later day
    services.registrations_check(now=tomorrow + timedelta(days=2))
    kept: dict[Any, int] = {}
    for made in SearchAttempt.objects.values_list("created_at", flat=True):
        kept[timezone.localdate(made)] = kept.get(timezone.localdate(made), 0) + 1
    counted = dict(SearchDay.objects.filter(institution=institution).values_list("day", "searches"))
    assert counted == kept and len(kept) == 3 and set(kept.values()) == {5}


def test_a_claim_counts_the_searches_in_flight_without_reading_the_whole_schedule(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    # Every record KwikID ever accepted keeps its row in the schedule; the cap's count of the searches in
    # flight (claimed, not yet kept) must walk only those, through their own index.
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    record = uploaded_record(alice, bob, branch_a, 1)
    copy_record(record, 3000)
    services.registry_checks_create(now=later(FIRST + 1))
    RegistryCheck.objects.exclude(record=record).update(next_check_at=None, last_outcome=Outcome.REGISTERED)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_registrycheck")
    with CaptureQueriesContext(connection) as queries:
        assert services.registrations_check(now=later(FIRST + 1)).searched == 1
    counts = [q["sql"] for q in queries if "COUNT(*)" in q["sql"] and '"registry_registrycheck"' in q["sql"]]
    assert counts, "no count of the searches in flight"
    count = counts[0]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + count)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "registry_check_in_flight" in plan and "Seq Scan" not in plan, plan


def test_a_pass_takes_the_due_records_in_index_order_whatever_the_statistics_say(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    # Statistics gathered while every record was due tomorrow; a day later all are due. With statistics
    # like these (at 100,000 waiting records in the benchmark) PostgreSQL gathered every due row and sorted
    # them to claim a few. Here a planner that finds index reads dear stands in for such statistics.
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    copy_record(uploaded_record(alice, bob, branch_a, 1), 3000)
    services.registry_checks_create(now=later(FIRST + 1))
    RegistryCheck.objects.update(next_check_at=timezone.now() + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_registrycheck")
    RegistryCheck.objects.update(next_check_at=timezone.now() - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        assert services.registrations_check(now=later(FIRST + 1), limit=50).searched == 50
    sql = [q["sql"] for q in queries]
    (claim,) = [q for q in sql if "SKIP LOCKED" in q and '"next_check_at" <=' in q]
    assert sql[sql.index(claim) - 2 : sql.index(claim)] == [
        "SET LOCAL enable_bitmapscan = off",
        "SET LOCAL enable_sort = off",
    ]

    def plan(walk: bool) -> str:
        walking = services.due_index_walk() if walk else contextlib.nullcontext()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL random_page_cost = 1000")
            with walking:
                cursor.execute("EXPLAIN " + claim)
                return "\n".join(row[0] for row in cursor.fetchall())

    assert "Sort" in plan(walk=False)  # every due row read, then sorted
    walked = plan(walk=True)
    assert "Index Scan using registry_check_due" in walked, walked
    assert "Bitmap" not in walked and "Sort" not in walked, walked


def test_a_pass_reads_and_locks_its_records_by_primary_key_whatever_the_statistics_say(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    # Statistics from when almost nothing was uploaded yet, then a large backlog waiting: "uploaded" looks
    # rare, and a status condition would have PostgreSQL walk every waiting record to find a claim's few.
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    record = uploaded_record(alice, bob, branch_a, 1)
    copy_record(record, 3000)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE records_kycrecord SET status = 'approved' WHERE id <> %s", [record.pk])
        cursor.execute("ANALYZE records_kycrecord")
        cursor.execute("UPDATE records_kycrecord SET status = 'uploaded'")
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))  # the copies' PAN too
    with CaptureQueriesContext(connection) as queries:
        assert services.registrations_check(now=later(FIRST + 1), limit=50).searched == 50
    assert KycRecord.objects.filter(status=Status.REGISTERED).count() == 50
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "records_kycrecord"."id"')
        and '"records_kycrecord"."id" IN (' in q["sql"]
    ]
    assert len(reads) == 2  # the claim's read, and the move's locking read
    for read in reads:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + read)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "records_kycrecord_pkey" in plan, plan


def test_the_migration_counts_the_searches_made_before_it_by_local_day(
    institution: Institution, settings: Any
) -> None:
    import importlib
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.apps import apps

    migration = importlib.import_module("registry.migrations.0004_search_day_and_in_flight")
    local = ZoneInfo(settings.TIME_ZONE)
    day = datetime(2026, 11, 2, tzinfo=local)
    # Ten past midnight in India is the day before in UTC: the local day counts.
    moments = (day.replace(minute=10), day.replace(hour=23, minute=50), day + timedelta(days=1, minutes=5))
    for moment in moments:
        SearchAttempt.objects.create(institution=institution, outcome=Outcome.NOT_FOUND, created_at=moment)
    SearchDay.objects.all().delete()
    migration.count_searches_made(apps, None)
    counted = dict(SearchDay.objects.filter(institution=institution).values_list("day", "searches"))
    assert counted == {day.date(): 2, day.date() + timedelta(days=1): 1}


def test_limit_and_small_batches(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.REGISTRY_CHECK_BATCH = 2
    for n in range(1, 8):
        uploaded_record(alice, bob, branch_a, n)
    at = later(FIRST + 1)
    assert services.registrations_check(now=at, limit=3).searched == 3
    # Batches of two, until nothing is due.
    assert services.registrations_check(now=at).searched == 4
    assert services.registrations_check(now=at).searched == 0


# --- claims ----------------------------------------------------------------------------------------


# --- one batch searched while the one before is kept ---------------------------------------------


def test_the_next_batch_is_searched_while_the_one_before_is_kept(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any, monkeypatch: Any
) -> None:
    settings.REGISTRY_CHECK_BATCH = 2
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 5)]
    # Claimed in order of their first check (their upload), two a batch.
    second_batch = {record.pan for record in records[2:]}
    second_searched = threading.Event()
    waited: list[bool] = []
    keep = services._keep

    def on_call(pan: str) -> None:
        if pan in second_batch:
            second_searched.set()

    def keep_once_the_next_is_searched(*args: Any, **kwargs: Any) -> None:
        if not waited:  # the first batch is kept only once a search of the second has begun
            waited.append(second_searched.wait(timeout=10))
        keep(*args, **kwargs)

    fake_search.on_call = on_call
    monkeypatch.setattr(services, "_keep", keep_once_the_next_is_searched)
    assert services.registrations_check(now=later(FIRST + 1)).searched == 4
    assert waited == [True]
    assert all(check_of(record).checks_made == 1 for record in records)


def test_a_token_refused_in_one_batch_claims_no_next_batch(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.REGISTRY_CHECK_BATCH = 2
    settings.REGISTRY_SEARCH_THREADS = 1
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 5)]
    fake_search.answer(records[1].pan, KwikIDAuthError("refused: HTTP 401", status_code=401))
    summary = services.registrations_check(now=later(FIRST + 1))
    assert summary.outcomes == {Outcome.NOT_FOUND: 1, Outcome.TOKEN_REFUSED: 1}
    assert sum(fake_search.calls.values()) == 2
    # The second batch was never claimed: no search, no claim left behind.
    for record in records[2:]:
        check = check_of(record)
        assert check.checks_made == 0 and check.claimed_until is None


def test_an_error_while_keeping_leaves_the_batch_under_way_to_its_lease(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any, monkeypatch: Any
) -> None:
    settings.REGISTRY_CHECK_BATCH = 2
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 5)]
    second_searched = threading.Event()
    fake_search.on_call = lambda pan: second_searched.set() if pan == records[2].pan else None

    def keep_fails(*args: Any, **kwargs: Any) -> None:
        assert second_searched.wait(timeout=10)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_keep", keep_fails)
    at = later(FIRST + 1)
    with pytest.raises(RuntimeError):
        services.registrations_check(now=at)
    # The pass ended after the second batch's searches (begun while the first was kept) were made; neither
    # batch was kept.
    assert sum(fake_search.calls.values()) == 4
    leases = {check_of(record).claimed_until for record in records}
    assert None not in leases and all(check_of(record).checks_made == 0 for record in records)
    monkeypatch.undo()
    assert services.registrations_check(now=at).searched == 0  # still held
    assert services.registrations_check(now=max(leases) + timedelta(seconds=1)).searched == 4  # type: ignore[type-var]


def test_a_pass_that_died_lets_go_when_its_lease_runs_out(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    services.registry_checks_create()
    at = later(FIRST + 1)
    RegistryCheck.objects.filter(record=record).update(claimed_until=at + timedelta(seconds=30))
    assert services.registrations_check(now=at).searched == 0
    assert services.registrations_check(now=at + timedelta(seconds=31)).searched == 1


def test_running_a_pass_twice_is_safe(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 4)]
    for record in records:
        fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    at = later(FIRST + 1)
    assert services.registrations_check(now=at).searched == 3
    assert services.registrations_check(now=at).searched == 0
    assert RegistryCheck.objects.count() == 3 and SearchAttempt.objects.count() == 3
    assert RecordEvent.objects.filter(action=RecordEvent.Action.REGISTERED).count() == 3


def test_the_schedule_is_made_once_per_uploaded_record(alice: User, bob: User, branch_a: Branch) -> None:
    uploaded_record(alice, bob, branch_a, 1)
    approved_record(alice, bob, branch_a, 2, pan=pan_for(2))  # not accepted yet: no place in the schedule
    assert services.registry_checks_create() == 1
    assert services.registry_checks_create() == 0
    assert RegistryCheck.objects.count() == 1


def test_refs_are_searched_due_or_not_and_only_while_uploaded(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    other = uploaded_record(alice, bob, branch_a, 2)
    draft_ref = approved_record(alice, bob, branch_a, 3, pan=pan_for(3)).kyc_ref_no
    summary = services.registrations_check(refs=[record.kyc_ref_no, draft_ref, "NO-SUCH-REF"])
    assert summary.searched == 1
    assert fake_search.calls[record.pan] == 1 and fake_search.calls[other.pan] == 0


# --- check now -------------------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    monkeypatch.setattr(services, "_enqueue_pass", lambda ids, asked_by_id: calls.append((ids, asked_by_id)))
    return calls


def test_a_checker_of_the_branch_asks_for_a_check_now(
    fake_search: FakeSearch,
    queued: list[tuple[Any, Any]],
    alice: User,
    bob: User,
    branch_a: Branch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    with django_capture_on_commit_callbacks(execute=True):
        services.record_check_now(actor=bob, record_id=record.pk)
    assert queued == [([record.pk], bob.pk)]
    assert check_of(record).next_check_at <= timezone.now()
    event = AuditEvent.objects.get(action="registry_check_now")
    assert (event.actor, event.object_type, event.object_id, event.detail) == (
        bob,
        "KycRecord",
        str(record.pk),
        {},
    )
    # What the queued task does: a pass for that record, noting who asked.
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    services.registrations_check(record_ids=[record.pk], asked_by=bob.username)
    record.refresh_from_db()
    assert record.status == Status.REGISTERED
    assert record.registration_note.startswith("By a check asked for by bob;")


def test_a_record_given_up_on_is_checked_again_when_asked(
    fake_search: FakeSearch,
    queued: list[tuple[Any, Any]],
    erin: User,
    alice: User,
    bob: User,
    branch_a: Branch,
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1, at=timezone.now() - timedelta(days=40))
    services.registrations_check()
    assert check_of(record).gave_up_at is not None
    services.record_check_now(actor=erin, record_id=record.pk)
    check = check_of(record)
    assert check.gave_up_at is None and check.next_check_at is not None
    assert services.registrations_check().searched == 1


@pytest.mark.parametrize("who", ["alice", "dave", "auditor"])
def test_others_cannot_ask_for_a_check(
    queued: list[tuple[Any, Any]], who: str, alice: User, bob: User, dave: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    actor = {"alice": alice, "dave": dave}.get(who) or make_user("audrey", Role.AUDITOR)
    with pytest.raises(ActionRefused):
        services.record_check_now(actor=actor, record_id=record.pk)
    assert not queued and not AuditEvent.objects.filter(action="registry_check_now").exists()


def test_only_an_uploaded_record_is_checked(
    queued: list[tuple[Any, Any]], alice: User, bob: User, branch_a: Branch
) -> None:
    record = approved_record(alice, bob, branch_a, 1, pan=pan_for(1))
    with pytest.raises(ActionRefused, match="approved"):
        services.record_check_now(actor=bob, record_id=record.pk)


def test_an_admin_makes_a_set_of_records_due_now(
    fake_search: FakeSearch,
    queued: list[tuple[Any, Any]],
    erin: User,
    bob: User,
    alice: User,
    branch_a: Branch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 4)]
    draft = approved_record(alice, bob, branch_a, 9, pan=pan_for(9))
    with django_capture_on_commit_callbacks(execute=True):
        made_due = services.records_check_now(actor=erin, record_ids=[r.pk for r in records] + [draft.pk])
    assert made_due == 3 and queued == [(None, None)]
    assert AuditEvent.objects.get(action="registry_check_now").detail == {"records_asked": 4, "made_due": 3}
    assert services.registrations_check().searched == 3
    with pytest.raises(ActionRefused):
        services.records_check_now(actor=bob, record_ids=[records[0].pk])
