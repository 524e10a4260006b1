"""The dashboard: figures per branch and institution, aggregated in SQL with a constant number of queries,
scoped to the user's branches, with server-drawn charts (no script, no CDN)."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, Role, User
from records import moves as record_moves
from records import services as record_services
from records.models import DUE_SOON_DAYS, KycRecord, Status
from reports import dashboard
from tests.conftest import approved_record, make_user, new_record, otp_login
from uploads.models import BatchItem, BatchStatus, UploadBatch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()  # the dashboard keeps its figures a few seconds; each test starts without them


def client_for(user: User) -> Client:
    client = Client()
    otp_login(client, user)
    return client


def batch_with(
    institution: Institution, branch: Branch, records: list[KycRecord], outcomes: list[str]
) -> UploadBatch:
    batch = UploadBatch.objects.create(
        institution=institution,
        branch=branch,
        status=BatchStatus.REJECTED if "rejected" in outcomes else BatchStatus.ACCEPTED,
        record_count=len(records),
        finished_at=timezone.now(),
        response_message="2 of 3 accepted",
    )
    for n, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
        BatchItem.objects.create(batch=batch, record=record, position=n, outcome=outcome)
    return batch


def test_figures(
    institution: Institution, alice: User, bob: User, branch_a: Branch, branch_b: Branch
) -> None:
    waiting_old = record_services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    record_services.record_submit(actor=alice, record=new_record(alice, branch_a, 2))
    new_record(alice, branch_a, 3)
    KycRecord.objects.filter(pk=waiting_old.pk).update(submitted_at=timezone.now() - timedelta(days=3))
    done = [approved_record(alice, bob, branch_a, n) for n in (4, 5, 6)]
    record_moves.records_mark_batched(record_ids=[r.pk for r in done])
    record_moves.records_mark_uploaded(record_ids=[done[0].pk, done[1].pk], message="OK")
    record_moves.records_mark_rejected(reasons={done[2].pk: "records[2].pan: invalid"})
    batch = batch_with(institution, branch_a, done, ["accepted", "accepted", "rejected"])
    KycRecord.objects.filter(pk=new_record(alice, branch_a, 7).pk).update(
        upload_due_on=timezone.localdate() - timedelta(days=2)
    )
    KycRecord.objects.filter(pk=new_record(alice, branch_a, 8).pk).update(
        upload_due_on=timezone.localdate() + timedelta(days=1)
    )

    data = dashboard.dashboard_get(bob)
    assert data.counts[Status.SUBMITTED] == 2 and data.counts[Status.UPLOADED] == 2
    assert data.oldest_waiting == waiting_old
    assert data.uploaded_today == 2
    assert (data.accepted_30d, data.rejected_30d, data.rejection_rate) == (2, 1, 33.3)
    assert data.last_batch == batch
    assert data.overdue is not None and data.overdue >= 1
    assert data.due_soon is not None and data.due_soon >= 1
    assert data.daily[-1] == {"day": timezone.localdate(), "accepted": 2, "rejected": 1}


def test_scoped_to_the_users_branches(
    alice: User, bob: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    new_record(alice, branch_a, 1)
    new_record(mallory, branch_b, 2)
    new_record(mallory, branch_b, 3)
    assert sum(dashboard.dashboard_get(bob).counts.values()) == 1
    # Asking for another branch by id shows one's own, not the other's.
    assert sum(dashboard.dashboard_get(bob, branch_id=branch_b.pk).counts.values()) == 1
    auditor = make_user("audrey", Role.AUDITOR)
    assert sum(dashboard.dashboard_get(auditor).counts.values()) == 3
    assert sum(dashboard.dashboard_get(auditor, branch_id=branch_b.pk).counts.values()) == 2


def test_query_count_does_not_grow_with_records_or_branches(
    institution: Institution, alice: User, branch_a: Branch, django_assert_max_num_queries: Any
) -> None:
    auditor = make_user("audrey", Role.AUDITOR)
    client = client_for(auditor)
    new_record(alice, branch_a, 1)
    with django_assert_max_num_queries(40) as few:
        assert client.get(reverse("reports:dashboard")).status_code == 200
    for n in range(5):
        branch = Branch.objects.create(institution=institution, code=f"X{n}", name=f"Extra {n}")
        maker = make_user(f"m{n}", Role.MAKER, branch)
        for k in range(4):
            new_record(maker, branch, 100 * n + k)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("reports:dashboard"))
    assert len(response.context["data"].per_branch) == 6


def test_page_shows_charts_as_images_without_scripts(alice: User, bob: User, branch_a: Branch) -> None:
    record_services.record_submit(actor=alice, record=new_record(alice, branch_a, 1))
    response = client_for(bob).get(reverse("reports:dashboard"))
    body = response.content.decode()
    assert 'src="data:image/svg+xml;base64,' in body
    assert "Bar chart of records by status" in body  # the text alternative
    chart = base64.b64decode(response.context["status_chart"].split(",", 1)[1]).decode()
    assert "<script" not in chart
    assert "Waiting for review" in chart
    assert 'id="upload-progress"' in body  # the live progress bar (progress.js)
    assert "/static/js/progress." in body


def test_figures_are_kept_a_few_seconds_and_say_when_they_were_taken(
    alice: User, bob: User, branch_a: Branch, settings: Any, django_assert_max_num_queries: Any
) -> None:
    settings.DASHBOARD_CACHE_SECONDS = 30
    client = client_for(bob)
    new_record(alice, branch_a, 1)
    with django_assert_max_num_queries(40) as first:
        client.get(reverse("reports:dashboard"))
    new_record(alice, branch_a, 2)
    with django_assert_max_num_queries(len(first.captured_queries) - 5) as second:
        response = client.get(reverse("reports:dashboard"))
    assert sum(response.context["data"].counts.values()) == 1  # the kept figures
    assert "Figures as of" in response.content.decode()
    assert len(second.captured_queries) < len(first.captured_queries)


def test_overdue_and_due_soon_use_the_records_window(alice: User, bob: User, branch_a: Branch) -> None:
    data = dashboard.dashboard_get(bob)
    assert (data.overdue, data.due_soon, data.due_soon_days) == (0, 0, DUE_SOON_DAYS)
    today = timezone.localdate()
    for n, days in enumerate((-1, 0, DUE_SOON_DAYS, DUE_SOON_DAYS + 1), start=1):
        KycRecord.objects.filter(pk=new_record(alice, branch_a, n).pk).update(
            upload_due_on=today + timedelta(days=days)
        )
    data = dashboard.dashboard_get(bob)
    assert (data.overdue, data.due_soon) == (1, 2)


def test_sending_batches_are_the_users_branches_or_the_one_asked_for(
    institution: Institution, bob: User, branch_a: Branch, branch_b: Branch
) -> None:
    sending_a, sending_b = (
        UploadBatch.objects.create(
            institution=institution, branch=b, status=BatchStatus.SENDING, record_count=1
        )
        for b in (branch_a, branch_b)
    )
    UploadBatch.objects.create(institution=institution, branch=branch_a, status=BatchStatus.ACCEPTED)
    assert list(dashboard.sending_batches(bob, None)) == [sending_a]
    auditor = make_user("audrey", Role.AUDITOR)
    assert set(dashboard.sending_batches(auditor, None)) == {sending_a, sending_b}
    assert list(dashboard.sending_batches(auditor, branch_b)) == [sending_b]
