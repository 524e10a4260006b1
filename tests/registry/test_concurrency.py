"""Two passes at the same time, each on its own PostgreSQL connection: every record is searched once,
and the daily cap holds across them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection

from institutions.models import Branch, Institution, User
from registry import services
from registry.models import SearchAttempt

from .conftest import FakeSearch, later, uploaded_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("registry_timings")]


def run_passes(count: int, **kwargs: Any) -> list[services.PassSummary]:
    """``count`` passes started together in threads (each thread its own database connection)."""
    barrier = threading.Barrier(count)
    summaries: list[services.PassSummary] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            summaries.append(services.registrations_check(**kwargs))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return summaries


@pytest.fixture
def slow_search(fake_search: FakeSearch) -> FakeSearch:
    # Each search takes a little while, as KwikID's would: the passes overlap.
    fake_search.on_call = lambda pan: time.sleep(0.02)
    return fake_search


def test_two_passes_at_once_search_each_record_once(
    slow_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    settings.REGISTRY_CHECK_BATCH = 3
    records = [uploaded_record(alice, bob, branch_a, n) for n in range(1, 13)]
    summaries = run_passes(3, now=later(601))
    assert sum(s.searched for s in summaries) == 12
    assert all(slow_search.calls[r.pan] == 1 for r in records)
    assert SearchAttempt.objects.count() == 12


def test_the_daily_cap_holds_for_passes_at_once(
    slow_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    settings.REGISTRY_CHECK_BATCH = 2
    Institution.objects.filter(pk=institution.pk).update(registration_daily_searches=5)
    for n in range(1, 11):
        uploaded_record(alice, bob, branch_a, n)
    summaries = run_passes(3, now=later(601))
    assert sum(s.searched for s in summaries) == 5
    assert SearchAttempt.objects.count() == 5 and sum(slow_search.calls.values()) == 5


def test_a_pass_never_searches_a_record_another_pass_holds(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    at = later(601)
    inner: list[services.PassSummary] = []
    asked = threading.Event()

    def second_pass(pan: str) -> None:
        # While the first pass waits for KwikID, a second pass runs (in the first's search thread, on a
        # connection of its own): the record is claimed and committed as such, so it skips it.
        if asked.is_set():
            return
        asked.set()
        try:
            inner.append(services.registrations_check(now=at, refs=[record.kyc_ref_no]))
        finally:
            connection.close()

    fake_search.on_call = second_pass
    assert services.registrations_check(now=at).searched == 1
    assert [s.searched for s in inner] == [0]
    assert fake_search.calls[record.pan] == 1
