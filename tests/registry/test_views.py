"""The reconciliation page: who sees it, branch scope, its figures and their links, exports, check now."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ckycportal.errors import ActionRefused
from institutions.models import Branch, Institution, Role, User
from records.models import KycRecord
from registry.models import Outcome, SearchAttempt
from tests.conftest import make_user, new_record, otp_login
from tests.records.registration import accepted, registered

pytestmark = pytest.mark.django_db

URL = reverse("registry:reconciliation")
LIST = reverse("records:list")


def client_for(user: User) -> Client:
    client = Client()
    otp_login(client, user)
    return client


@pytest.fixture
def auditor(institution: Institution) -> User:
    return make_user("ivan", Role.AUDITOR)


@pytest.fixture
def seeded(alice: User, branch_a: Branch) -> dict[str, KycRecord]:
    """Branch A's records in each registration state, waiting ones of each age."""
    today = timezone.localdate()
    overdue_day = today - timedelta(days=30)  # verified 30 days ago: due 20 days ago

    def record(n: int, *, overdue: bool = False) -> KycRecord:
        return new_record(alice, branch_a, n, kyc_verification_date=overdue_day if overdue else today)

    return {
        "fresh": accepted(record(1), days_ago=0),
        "three": accepted(record(2), days_ago=3),
        "five": accepted(record(3), days_ago=5),
        "nine": accepted(record(4, overdue=True), days_ago=9),
        "old": accepted(record(5), days_ago=15),
        "registered": registered(record(6, overdue=True), "60012345678906"),
        "preexisting": registered(record(7), "60012345678907", preexisting=True),
        "draft_overdue": record(8, overdue=True),
    }


def counts(response: Any) -> dict[str, int]:
    return response.context["data"].total.counts


def listed(client: Client, query: str) -> set[str]:
    return {r.kyc_ref_no for r in client.get(f"{LIST}?{query}").context["page"].rows}


# Who sees it -------------------------------------------------------------------------------------------


def test_checkers_admins_and_auditors_see_the_page_makers_do_not(
    alice: User, bob: User, erin: User, auditor: User
) -> None:
    for user in (bob, erin, auditor):
        response = client_for(user).get(URL)
        assert response.status_code == 200, user.username
        assert f'href="{URL}"' in response.content.decode()  # the nav link
    maker = client_for(alice)
    assert maker.get(URL).status_code == 403
    assert maker.get(reverse("registry:export_csv")).status_code == 403
    assert f'href="{URL}"' not in maker.get(reverse("records:list")).content.decode()


def test_figures_are_scoped_to_the_users_branches(
    alice: User, mallory: User, bob: User, dave: User, erin: User, branch_a: Branch, branch_b: Branch
) -> None:
    accepted(new_record(alice, branch_a, 1), days_ago=1)
    registered(new_record(mallory, branch_b, 1), "60012345678901")
    registered(new_record(mallory, branch_b, 2), "60012345678902")

    assert (counts(client_for(bob).get(URL))["waiting"], counts(client_for(bob).get(URL))["registered"]) == (
        1,
        0,
    )
    assert (
        counts(client_for(dave).get(URL))["waiting"],
        counts(client_for(dave).get(URL))["registered"],
    ) == (0, 2)
    admin = client_for(erin).get(URL)
    assert (counts(admin)["waiting"], counts(admin)["registered"], counts(admin)["accepted"]) == (1, 2, 3)
    assert [row.code for row in admin.context["data"].branches] == ["BRA", "BRB"]


# Figures and links -------------------------------------------------------------------------------------


def test_bucket_counts(bob: User, seeded: dict[str, KycRecord]) -> None:
    assert counts(client_for(bob).get(URL)) == {
        "accepted": 7,
        "registered": 1,
        "preexisting": 1,
        "waiting": 5,
        "waiting_0_3": 2,
        "waiting_4_7": 1,
        "waiting_8_10": 1,
        "waiting_over_10": 1,
        "overdue": 2,  # the draft and the waiting record: the registered one's clock has stopped
        "overdue_waiting": 1,
    }


def test_each_count_links_to_exactly_its_records(bob: User, seeded: dict[str, KycRecord]) -> None:
    client = client_for(bob)
    response = client.get(URL)
    page = response.content.decode()
    expected = {
        "accepted": {"fresh", "three", "five", "nine", "old", "registered", "preexisting"},
        "registered": {"registered"},
        "preexisting": {"preexisting"},
        "waiting": {"fresh", "three", "five", "nine", "old"},
        "waiting_0_3": {"fresh", "three"},
        "waiting_4_7": {"five"},
        "waiting_8_10": {"nine"},
        "waiting_over_10": {"old"},
        "overdue": {"nine", "draft_overdue"},
        "overdue_waiting": {"nine"},
    }
    for cell in response.context["data"].total.cells:
        href = f'href="{LIST}?{cell.query.replace("&", "&amp;")}"'
        assert href in page, cell.bucket.key
        assert listed(client, cell.query) == {
            seeded[name].kyc_ref_no for name in expected[cell.bucket.key]
        }, cell.bucket.key


def test_branch_rows_link_to_the_list_in_that_branch(
    erin: User, mallory: User, branch_b: Branch, seeded: dict[str, KycRecord]
) -> None:
    theirs = accepted(new_record(mallory, branch_b, 1), days_ago=1)
    client = client_for(erin)
    rows = {row.code: row for row in client.get(URL).context["data"].branches}
    cell = next(c for c in rows["BRB"].cells if c.bucket.key == "waiting_0_3")

    assert cell.count == 1
    assert listed(client, cell.query) == {theirs.kyc_ref_no}


def test_query_count_does_not_grow_with_records(
    bob: User, alice: User, branch_a: Branch, django_assert_num_queries: Any
) -> None:
    client = client_for(bob)
    client.get(URL)  # the session is loaded once per request either way
    accepted(new_record(alice, branch_a, 1), days_ago=1)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for n in range(2, 12):
        registered(new_record(alice, branch_a, n), f"600123456789{n:02d}")
    with django_assert_num_queries(len(few)):
        client.get(URL)


def test_search_figures_count_today_against_the_cap(bob: User, institution: Institution) -> None:
    institution.registration_daily_searches = 3
    institution.save()
    for outcome in (Outcome.NOT_FOUND, Outcome.UNREADABLE, Outcome.REGISTERED):
        SearchAttempt.objects.create(institution=institution, outcome=outcome)
    SearchAttempt.objects.create(  # append-only: born old
        institution=institution, outcome=Outcome.UNREADABLE, created_at=timezone.now() - timedelta(days=3)
    )

    response = client_for(bob).get(URL)
    [figures] = response.context["data"].searches

    assert (figures.today, figures.cap, figures.cap_reached) == (3, 3, True)
    assert (figures.unreadable_today, figures.unreadable_window) == (1, 2)
    assert figures.last_search_at is not None
    assert "3 of 3 a day" in response.content.decode()


# Exports -----------------------------------------------------------------------------------------------


def test_csv_export_has_a_row_per_branch_and_the_total(bob: User, seeded: dict[str, KycRecord]) -> None:
    response = client_for(bob).get(reverse("registry:export_csv"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="registration-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    assert [(r["branch_code"], r["branch_name"]) for r in rows] == [
        ("BRA", "Branch A"),
        ("", "All your branches"),
    ]
    assert rows[0]["waiting_4_7"] == rows[1]["waiting_4_7"] == "1"
    assert rows[1]["preexisting"] == "1"
    assert rows[1]["overdue"] == "2"


def test_xlsx_export_has_the_same_table(auditor: User, seeded: dict[str, KycRecord]) -> None:
    response = client_for(auditor).get(reverse("registry:export_xlsx"))
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet is not None
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    total = dict(zip(header, rows[-1], strict=True))

    assert header[:3] == ["branch_code", "branch_name", "accepted"]
    assert (total["accepted"], total["waiting"], total["waiting_over_10"]) == (7, 5, 1)


# Check now ---------------------------------------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The registry services' check-now calls, recorded instead of made (their behaviour is theirs)."""
    made: list[Any] = []

    def one(*, actor: User, record_id: int) -> None:
        made.append(("one", actor.username, record_id))

    def many(*, actor: User, record_ids: Any) -> int:
        ids = sorted(record_ids)
        made.append(("many", actor.username, ids))
        return len(ids)

    monkeypatch.setattr("registry.services.record_check_now", one)
    monkeypatch.setattr("registry.services.records_check_now", many)
    return made


def test_a_checker_has_one_record_searched_now(
    bob: User, alice: User, branch_a: Branch, calls: list[Any]
) -> None:
    record = accepted(new_record(alice, branch_a, 1))
    client = client_for(bob)

    response = client.post(reverse("registry:check_record", args=[record.pk]), follow=True)

    assert calls == [("one", "bob", record.pk)]
    assert response.redirect_chain[-1][0] == reverse("records:detail", args=[record.pk])
    assert "will be searched at the registry" in response.content.decode()


def test_a_maker_cannot_have_a_record_searched(alice: User, branch_a: Branch, calls: list[Any]) -> None:
    record = accepted(new_record(alice, branch_a, 1))

    response = client_for(alice).post(reverse("registry:check_record", args=[record.pk]))

    assert response.status_code == 403
    assert calls == []


def test_check_now_of_another_branchs_record_is_not_found(
    dave: User, alice: User, branch_a: Branch, calls: list[Any]
) -> None:
    record = accepted(new_record(alice, branch_a, 1))

    assert client_for(dave).post(reverse("registry:check_record", args=[record.pk])).status_code == 404
    assert calls == []


def test_a_refused_check_is_shown_as_a_message(
    bob: User, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = registered(new_record(alice, branch_a, 1), "60012345678901")

    def refuse(*, actor: User, record_id: int) -> None:
        raise ActionRefused("This record is registered already: there is nothing to check.")

    monkeypatch.setattr("registry.services.record_check_now", refuse)
    response = client_for(bob).post(reverse("registry:check_record", args=[record.pk]), follow=True)

    assert "Not checked: This record is registered already" in response.content.decode()


def test_an_admin_has_a_waiting_bucket_searched_now(
    erin: User, seeded: dict[str, KycRecord], calls: list[Any]
) -> None:
    client = client_for(erin)
    page = client.get(URL).content.decode()
    assert reverse("registry:check_bucket", args=["waiting_4_7"]) in page
    assert reverse("registry:check_bucket", args=["registered"]) not in page  # not waiting: no button

    response = client.post(reverse("registry:check_bucket", args=["waiting_0_3"]), follow=True)

    assert calls == [("many", "erin", sorted([seeded["fresh"].pk, seeded["three"].pk]))]
    assert "2 records (0\N{EN DASH}3 days) will be searched in the next pass" in response.content.decode()


def test_only_admins_check_buckets_and_only_waiting_ones(
    bob: User, erin: User, seeded: dict[str, KycRecord], calls: list[Any]
) -> None:
    assert client_for(bob).post(reverse("registry:check_bucket", args=["waiting"])).status_code == 403
    assert reverse("registry:check_bucket", args=["waiting"]) not in client_for(bob).get(URL).content.decode()
    admin = client_for(erin)
    assert admin.post(reverse("registry:check_bucket", args=["registered"])).status_code == 404
    assert admin.post(reverse("registry:check_bucket", args=["nonsense"])).status_code == 404
    assert admin.get(reverse("registry:check_bucket", args=["waiting"])).status_code == 405
    assert calls == []
