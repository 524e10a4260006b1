"""The deadline clock counts registration, not acceptance: an uploaded record past its due date is overdue
in the list's filter, on the dashboard and in the checker's digest until the registry holds it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from institutions.models import Branch, User
from records import selectors as record_selectors
from records.listing import ListQuery
from records.models import KycRecord, Status
from registry import services
from reports import dashboard
from reports import services as report_services

from .conftest import FakeSearch, found, later, uploaded_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_timings")]


def overdue_refs(user: User) -> list[str]:
    return list(
        record_selectors.record_search(user, ListQuery(due="overdue")).values_list("kyc_ref_no", flat=True)
    )


def test_an_accepted_record_stays_overdue_until_it_is_registered(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch, settings: Any
) -> None:
    settings.DASHBOARD_CACHE_SECONDS = 0
    record = uploaded_record(alice, bob, branch_a, 1)
    KycRecord.objects.filter(pk=record.pk).update(upload_due_on=timezone.localdate() - timedelta(days=1))
    record.refresh_from_db()
    assert record.status == Status.UPLOADED and record.due_state == "overdue"
    assert overdue_refs(bob) == [record.kyc_ref_no]
    assert dashboard.dashboard_get(bob).overdue == 1
    assert report_services._digest_counts(bob, timezone.localtime()).overdue == 1

    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    services.registrations_check(now=later(601))
    record.refresh_from_db()
    assert record.status == Status.REGISTERED and record.due_state == ""
    assert overdue_refs(bob) == []
    assert dashboard.dashboard_get(bob).overdue == 0
    assert report_services._digest_counts(bob, timezone.localtime()).overdue == 0
