"""From accepted to registered through a real Celery worker, real Redis and PostgreSQL, and the project's
KwikID stand-in playing the registry: each answer shape, registered before upload reaching the
notifications, the back-off schedule, the daily cap, and a refused token pausing searches and uploads
until it is replaced."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from django.utils import timezone

from institutions.models import Branch, Institution, User
from kwikid_standin.server import StandIn, kin_for
from records.models import KycRecord, Status
from registry.models import Outcome, RegistryCheck, SearchAttempt
from reports import services as report_services
from reports.models import Notification
from tests.conftest import approved_record, wait_for
from uploads import services as upload_services
from uploads.institution import institution_configure

from .conftest import pan_for, ring_for, ring_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def upload(maker: User, checker: User, branch: Branch, numbers: range) -> list[KycRecord]:
    """Approve records and let the worker upload them; returns them once KwikID has accepted them all."""
    records = [approved_record(maker, checker, branch, n, pan=pan_for(n)) for n in numbers]
    upload_services.request_assembly()
    ids = [r.pk for r in records]
    wait_for(
        lambda: KycRecord.objects.filter(pk__in=ids, status=Status.UPLOADED).count() == len(ids), timeout=60
    )
    return list(KycRecord.objects.filter(pk__in=ids).order_by("pk"))


def status_of(record: KycRecord) -> str:
    return KycRecord.objects.values_list("status", flat=True).get(pk=record.pk)


@pytest.mark.parametrize("shape", ["flat", "nested", "ckyc_number"])
def test_accepted_records_become_registered_with_their_kin_whatever_the_answer_shape(
    registry_worker: Path, kwikid: StandIn, alice: User, bob: User, branch_a: Branch, shape: str
) -> None:
    kwikid.set_faults(search_shape=shape, register_after_seconds=2)
    records = upload(alice, bob, branch_a, range(1, 4))
    ids = [r.pk for r in records]
    ring_until(lambda: KycRecord.objects.filter(pk__in=ids, status=Status.REGISTERED).count() == 3)
    for record in KycRecord.objects.filter(pk__in=ids):
        assert record.ckyc_number == kin_for(record.pan)
        assert record.registry_kyc_date == timezone.localdate()
        assert record.registration_note.startswith("By the scheduled check")
    # Registered two seconds after acceptance and first searched after one: some were not found first.
    outcomes = set(SearchAttempt.objects.values_list("outcome", flat=True))
    assert Outcome.REGISTERED in outcomes and outcomes <= {Outcome.REGISTERED, Outcome.NOT_FOUND}
    assert SearchAttempt.objects.filter(outcome=Outcome.REGISTERED).count() == 3
    assert not RegistryCheck.objects.filter(next_check_at__isnull=False).exists()
    stats = kwikid.stats()
    assert stats["accepted_records"] == 3 and stats["duplicates"] == 0
    assert stats["searches"] == SearchAttempt.objects.count()


def test_a_customer_registered_before_the_upload_reaches_the_maker_and_checker(
    registry_worker: Path, kwikid: StandIn, alice: User, bob: User, branch_a: Branch
) -> None:
    kwikid.set_faults(preregistered=[pan_for(1)])
    (record,) = upload(alice, bob, branch_a, range(1, 2))
    ring_until(lambda: status_of(record) == Status.PREEXISTING)
    record.refresh_from_db()
    assert record.registry_kyc_date is not None and record.registry_kyc_date.isoformat() == "2019-04-01"
    report_services.notifications_derive()
    notes = Notification.objects.filter(kind=Notification.Kind.PREEXISTING, record=record)
    assert sorted(notes.values_list("recipient__username", flat=True)) == ["alice", "bob"]


def test_a_record_never_registered_is_searched_less_and_less_often(
    registry_worker: Path, kwikid: StandIn, alice: User, bob: User, branch_a: Branch
) -> None:
    kwikid.set_faults(never_register=[pan_for(1)])
    (record,) = upload(alice, bob, branch_a, range(1, 2))
    ring_until(lambda: SearchAttempt.objects.filter(record=record).count() >= 4, every=0.25)
    times = sorted(SearchAttempt.objects.filter(record=record).values_list("created_at", flat=True))[:4]
    waits = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    # 1 s after acceptance, then waits of 3 s, 4 s (the maximum), 4 s; a pass is queued every 0.25 s.
    for wait, expected in zip(waits, [3, 4, 4], strict=True):
        assert expected <= wait < expected + 1.5, waits
    assert (times[0] - record.uploaded_at).total_seconds() >= 1
    assert status_of(record) == Status.UPLOADED
    assert set(SearchAttempt.objects.values_list("outcome", flat=True)) == {Outcome.NOT_FOUND}


def test_the_daily_cap_holds_through_the_worker(
    registry_worker: Path, kwikid: StandIn, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    kwikid.set_faults(never_register=[pan_for(n) for n in range(1, 4)])
    Institution.objects.filter(pk=institution.pk).update(registration_daily_searches=4)
    upload(alice, bob, branch_a, range(1, 4))
    ring_until(lambda: SearchAttempt.objects.count() >= 4)
    # Well past the next waits (3 s, then 4 s): nothing more is searched today.
    ring_for(9)
    assert SearchAttempt.objects.count() == 4 and kwikid.stats()["searches"] == 4


def test_the_stand_ins_own_daily_limit_is_a_failed_search_that_backs_off(
    registry_worker: Path, kwikid: StandIn, alice: User, bob: User, branch_a: Branch
) -> None:
    kwikid.set_faults(search_daily_cap=1, never_register=[pan_for(1), pan_for(2)])
    upload(alice, bob, branch_a, range(1, 3))
    ring_until(lambda: SearchAttempt.objects.filter(outcome=Outcome.FAILED, status_code=429).exists())
    assert RegistryCheck.objects.filter(last_outcome=Outcome.FAILED, next_check_at__isnull=False).exists()


def test_a_refused_token_pauses_searches_and_uploads_until_a_new_one_is_set(
    registry_worker: Path,
    kwikid: StandIn,
    institution: Institution,
    alice: User,
    bob: User,
    erin: User,
    branch_a: Branch,
) -> None:
    kwikid.set_faults(register_after_seconds=0)
    (first,) = upload(alice, bob, branch_a, range(1, 2))
    kwikid.set_faults(token="the-new-token-42")  # KwikID now refuses the portal's token
    ring_until(
        lambda: Institution.objects.filter(pk=institution.pk, sending_paused_at__isnull=False).exists()
    )
    assert SearchAttempt.objects.filter(outcome=Outcome.TOKEN_REFUSED, status_code=401).count() == 1
    assert status_of(first) == Status.UPLOADED
    # Paused: a newly approved record is not sent, and no further search is made.
    second = approved_record(alice, bob, branch_a, 2, pan=pan_for(2))
    upload_services.request_assembly()
    searches = kwikid.stats()["searches"]
    ring_for(5)
    assert status_of(second) == Status.APPROVED
    assert kwikid.stats()["searches"] == searches
    # The admin sets the new token: uploads resume by themselves, and the next passes find both.
    institution_configure(actor=erin, institution=institution, data={}, token="the-new-token-42")
    ring_until(
        lambda: status_of(first) == Status.REGISTERED and status_of(second) == Status.REGISTERED, timeout=60
    )
    stats = kwikid.stats()
    assert stats["accepted_records"] == 2 and stats["duplicates"] == 0
