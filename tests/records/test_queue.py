"""The checker's queue: oldest first, never their own, and bulk approve / return with a result per record."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ckycportal.errors import ActionRefused
from institutions.models import Branch, Role, User
from records import services
from records.models import KycRecord, RecordEvent, Status
from tests.conftest import new_record, otp_login

pytestmark = pytest.mark.django_db

QUEUE = reverse("records:review_queue")
DECIDE = reverse("records:review_bulk")


def submitted(maker: User, branch: Branch, n: int = 1, **overrides: Any) -> KycRecord:
    return services.record_submit(actor=maker, record=new_record(maker, branch, n, **overrides))


def statuses(*records: KycRecord) -> list[str]:
    return [KycRecord.objects.get(pk=r.pk).status for r in records]


def outcomes(results: list[services.ReviewResult]) -> list[str]:
    return [r.outcome for r in results]


# The service ---------------------------------------------------------------------------------------------


def test_bulk_approve_approves_each_record(alice: User, bob: User, branch_a: Branch) -> None:
    first, second = submitted(alice, branch_a, 1), submitted(alice, branch_a, 2)

    results = services.records_review(actor=bob, record_ids=[first.pk, second.pk], decision="approve")

    assert outcomes(results) == ["approved", "approved"]
    assert statuses(first, second) == [Status.APPROVED, Status.APPROVED]


def test_bulk_return_gives_every_record_the_one_reason(alice: User, bob: User, branch_a: Branch) -> None:
    first, second = submitted(alice, branch_a, 1), submitted(alice, branch_a, 2)

    services.records_review(
        actor=bob, record_ids=[first.pk, second.pk], decision="return", reason="Photo unreadable"
    )

    returned = RecordEvent.objects.filter(action=RecordEvent.Action.RETURNED).values_list("record", "reason")
    assert sorted(returned) == [(first.pk, "Photo unreadable"), (second.pk, "Photo unreadable")]


def test_bulk_return_without_a_reason_changes_nothing(alice: User, bob: User, branch_a: Branch) -> None:
    record = submitted(alice, branch_a)

    with pytest.raises(ActionRefused, match="Say why"):
        services.records_review(actor=bob, record_ids=[record.pk], decision="return", reason="  ")
    assert statuses(record) == [Status.SUBMITTED]


def test_bulk_decision_skips_own_changed_and_other_branch_records_and_decides_the_rest(
    alice: User, bob: User, carol: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    good = submitted(alice, branch_a, 1)
    decided = submitted(alice, branch_a, 2)
    services.record_approve(actor=carol, record=decided)  # carol got there first
    bob.role = Role.MAKER
    bob.save()
    own = submitted(bob, branch_a, 3)
    bob.role = Role.CHECKER
    bob.save()
    elsewhere = submitted(mallory, branch_b, 4)

    results = services.records_review(
        actor=bob, record_ids=[good.pk, decided.pk, own.pk, elsewhere.pk], decision="approve"
    )

    assert outcomes(results) == ["approved", "changed", "own", "missing"]
    assert "changed meanwhile" in results[1].message and "by carol" in results[1].message
    assert results[3].kyc_ref_no == ""  # nothing of another branch's record is told
    assert statuses(good, decided, own, elsewhere) == [
        Status.APPROVED,
        Status.APPROVED,
        Status.SUBMITTED,
        Status.SUBMITTED,
    ]
    assert RecordEvent.objects.filter(record=decided, action=RecordEvent.Action.APPROVED).count() == 1


def test_bulk_approve_skips_a_record_with_problems(alice: User, bob: User, branch_a: Branch) -> None:
    broken, fine = submitted(alice, branch_a, 1), submitted(alice, branch_a, 2)
    KycRecord.objects.filter(pk=broken.pk).update(gender="")  # damaged after submission

    results = services.records_review(actor=bob, record_ids=[broken.pk, fine.pk], decision="approve")

    assert outcomes(results) == ["invalid", "approved"]
    assert statuses(broken, fine) == [Status.SUBMITTED, Status.APPROVED]


# The pages -----------------------------------------------------------------------------------------------


def test_queue_lists_oldest_submission_first_without_the_checkers_own(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    older, newer = submitted(alice, branch_a, 1), submitted(alice, branch_a, 2)
    new_record(alice, branch_a, 3)  # a draft: not waiting
    bob.role = Role.MAKER
    bob.save()
    submitted(bob, branch_a, 4)
    bob.role = Role.CHECKER
    bob.save()
    otp_login(client, bob)

    page = client.get(QUEUE).context["page"]

    assert [r.kyc_ref_no for r in page.rows] == [older.kyc_ref_no, newer.kyc_ref_no]


def test_bulk_form_shows_a_summary_line_per_record(
    client: Client, alice: User, bob: User, carol: User, branch_a: Branch
) -> None:
    good, decided = submitted(alice, branch_a, 1), submitted(alice, branch_a, 2)
    services.record_approve(actor=carol, record=decided)
    otp_login(client, bob)

    response = client.post(DECIDE, {"record": [good.pk, decided.pk], "decision": "approve"}, follow=True)

    page = response.content.decode()
    assert "1 of 2 records approved." in page
    assert "Skipped: changed meanwhile" in page and "Approved</span>" in page
    assert [r["outcome"] for r in response.context["results"]] == ["approved", "changed"]
    assert client.get(QUEUE).context["results"] is None  # shown once


def test_bulk_return_without_reason_is_refused_on_the_page(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    otp_login(client, bob)

    response = client.post(DECIDE, {"record": [record.pk], "decision": "return"}, follow=True)

    assert "Say why the records are returned" in response.content.decode()
    assert statuses(record) == [Status.SUBMITTED]


def test_maker_cannot_use_the_bulk_decision(client: Client, alice: User, branch_a: Branch) -> None:
    record = submitted(alice, branch_a)
    client.force_login(alice)

    assert client.post(DECIDE, {"record": [record.pk], "decision": "approve"}).status_code == 403
    assert statuses(record) == [Status.SUBMITTED]


def test_queue_query_count_does_not_grow(
    client: Client, alice: User, bob: User, branch_a: Branch, django_assert_num_queries: Any
) -> None:
    for n in range(1, 6):
        submitted(alice, branch_a, n)
    otp_login(client, bob)
    client.get(QUEUE)
    with CaptureQueriesContext(connection) as five:
        assert client.get(QUEUE).status_code == 200
    with_five = len(five.captured_queries)  # read now: the next request clears the query log
    for n in range(6, 60):
        submitted(alice, branch_a, n)
    cursor = client.get(QUEUE).context["page"].next_cursor

    with django_assert_num_queries(with_five):
        client.get(QUEUE)
    with django_assert_num_queries(with_five):
        client.get(QUEUE, {"after": cursor})


# The queue's layout: rows first, the decision bar only when there is something to decide -----------------


def test_queue_rows_come_before_the_decision_buttons(
    client: Client, alice: User, bob: User, branch_a: Branch
) -> None:
    record = submitted(alice, branch_a)
    otp_login(client, bob)

    html = client.get(QUEUE).content.decode()

    # Document order is Tab order: the row's checkbox, then the buttons that decide the ticked rows.
    assert html.index(f'id="pick-{record.pk}"') < html.index('value="approve"') < html.index('value="return"')
    assert "{#" not in html  # a template comment that leaked onto the page


def test_an_empty_queue_shows_no_decision_bar_and_no_select_all(
    client: Client, bob: User, branch_a: Branch
) -> None:
    otp_login(client, bob)

    html = client.get(QUEUE).content.decode()

    assert "Nothing is waiting for you." in html
    assert 'id="bulk-review"' not in html
    assert "data-select-all" not in html
