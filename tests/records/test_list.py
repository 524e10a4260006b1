"""The records list: filters, search, sort, seek pagination, constant query counts and branch scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, Role, User
from records import listing, services
from records.models import KycRecord, Status
from tests.conftest import make_user, new_record
from tests.records.factories import valid_record
from tests.records.registration import accepted, registered
from uploads.models import BatchItem, UploadBatch

pytestmark = pytest.mark.django_db

URL = reverse("records:list")


def refs(response: Any) -> list[str]:
    return [r.kyc_ref_no for r in response.context["page"].rows]


def with_ref(maker: User, branch: Branch, ref: str, **overrides: Any) -> KycRecord:
    data = valid_record() | {"kyc_ref_no": ref} | overrides
    return services.record_create(actor=maker, branch=branch, data=data)


def many(maker: User, branch: Branch, count: int, start: int = 1) -> list[KycRecord]:
    return [new_record(maker, branch, n) for n in range(start, start + count)]


@pytest.fixture
def auditor(institution: Institution) -> User:
    return make_user("ivan", Role.AUDITOR)


# Filters -----------------------------------------------------------------------------------------------


def test_status_filter(client: Client, alice: User, branch_a: Branch) -> None:
    draft, submitted = new_record(alice, branch_a, 1), new_record(alice, branch_a, 2)
    services.record_submit(actor=alice, record=submitted)
    client.force_login(alice)

    assert refs(client.get(URL, {"status": "submitted"})) == [submitted.kyc_ref_no]
    assert refs(client.get(URL, {"status": "draft"})) == [draft.kyc_ref_no]


def test_branch_and_maker_filters(
    client: Client, alice: User, branch_a: Branch, branch_b: Branch, mallory: User, auditor: User
) -> None:
    mine, theirs = new_record(alice, branch_a), new_record(mallory, branch_b)
    client.force_login(auditor)

    assert refs(client.get(URL, {"branch": branch_b.pk})) == [theirs.kyc_ref_no]
    assert refs(client.get(URL, {"maker": alice.pk})) == [mine.kyc_ref_no]


def test_batch_filter(client: Client, alice: User, branch_a: Branch, institution: Institution) -> None:
    first, _second = new_record(alice, branch_a, 1), new_record(alice, branch_a, 2)
    batch = UploadBatch.objects.create(institution=institution, branch=branch_a)
    BatchItem.objects.create(batch=batch, record=first, position=0)
    client.force_login(alice)

    assert refs(client.get(URL, {"batch": batch.pk})) == [first.kyc_ref_no]


def test_date_filter_on_the_verification_date(client: Client, alice: User, branch_a: Branch) -> None:
    early = new_record(alice, branch_a, 1, kyc_verification_date=timezone.localdate() - timedelta(days=20))
    new_record(alice, branch_a, 2, kyc_verification_date=timezone.localdate())
    client.force_login(alice)
    to = (timezone.localdate() - timedelta(days=10)).isoformat()

    assert refs(client.get(URL, {"date_on": "verified", "date_to": to})) == [early.kyc_ref_no]


def test_overdue_and_due_soon_filters(client: Client, alice: User, branch_a: Branch) -> None:
    today = timezone.localdate()
    # Due 10 days after verification: verified 11 days ago is overdue, 9 days ago due tomorrow.
    overdue = new_record(alice, branch_a, 1, kyc_verification_date=today - timedelta(days=11))
    soon = new_record(alice, branch_a, 2, kyc_verification_date=today - timedelta(days=9))
    new_record(alice, branch_a, 3, kyc_verification_date=today)
    done = new_record(alice, branch_a, 4, kyc_verification_date=today - timedelta(days=30))
    KycRecord.objects.filter(pk=done.pk).update(status=Status.REGISTERED)
    # Accepted by KwikID is not registered: its clock still runs.
    waiting = new_record(alice, branch_a, 5, kyc_verification_date=today - timedelta(days=30))
    KycRecord.objects.filter(pk=waiting.pk).update(status=Status.UPLOADED)
    client.force_login(alice)

    assert set(refs(client.get(URL, {"due": "overdue"}))) == {overdue.kyc_ref_no, waiting.kyc_ref_no}
    assert refs(client.get(URL, {"due": "soon"})) == [soon.kyc_ref_no]
    page = client.get(URL, {"due": "overdue"}).content.decode()
    assert "Overdue</span>" in page


def test_a_bad_filter_value_is_named_and_left_out(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)

    response = client.get(URL, {"batch": "abc", "status": "nonsense"})

    assert refs(response) == [record.kyc_ref_no]
    assert "Upload batch no.</strong>" in response.content.decode()
    assert "Status</strong>" in response.content.decode()


# Search ------------------------------------------------------------------------------------------------


def test_reference_search_matches_a_prefix_in_any_case(client: Client, alice: User, branch_a: Branch) -> None:
    hit = with_ref(alice, branch_a, "mum-2026/0001")
    with_ref(alice, branch_a, "DEL-2026/0001")
    with_ref(alice, branch_a, "X-MUM-2026/0001")
    client.force_login(alice)

    assert refs(client.get(URL, {"q": "MUM-2026"})) == [hit.kyc_ref_no]


def test_pan_search_is_exact(client: Client, alice: User, branch_a: Branch) -> None:
    hit = new_record(alice, branch_a, 1, pan="ABCPE1234F")
    new_record(alice, branch_a, 2, pan="ABCPE1234G")
    client.force_login(alice)

    assert refs(client.get(URL, {"q": "abcpe1234f"})) == [hit.kyc_ref_no]
    assert refs(client.get(URL, {"q": "ABCPE123", "by": "pan"})) == []


def test_name_search_matches_whole_words_all_of_them(client: Client, alice: User, branch_a: Branch) -> None:
    ravi_kumar = new_record(alice, branch_a, 1, applicant_first_name="RAVI", applicant_middle_name="KUMAR")
    ravi = new_record(alice, branch_a, 2, applicant_first_name="RAVI", applicant_middle_name="")
    new_record(alice, branch_a, 3, applicant_first_name="RAVINDRA", applicant_middle_name="")
    client.force_login(alice)

    assert set(refs(client.get(URL, {"q": "ravi"}))) == {ravi_kumar.kyc_ref_no, ravi.kyc_ref_no}
    assert refs(client.get(URL, {"q": "kumar ravi"})) == [ravi_kumar.kyc_ref_no]
    assert refs(client.get(URL, {"q": "RAV", "by": "name"})) == []


def test_kin_search_is_exact_and_allows_spaces_and_hyphens(
    client: Client, alice: User, branch_a: Branch
) -> None:
    hit = registered(new_record(alice, branch_a, 1), "60012345678901")
    registered(new_record(alice, branch_a, 2), "60012345678902")
    client.force_login(alice)

    assert refs(client.get(URL, {"q": "60012345678901"})) == [hit.kyc_ref_no]
    assert refs(client.get(URL, {"q": "6001 2345 6789 01"})) == [hit.kyc_ref_no]
    assert refs(client.get(URL, {"q": "6001-2345-6789-01"})) == [hit.kyc_ref_no]
    assert refs(client.get(URL, {"q": "6001234567890", "by": "kin"})) == []  # 13 digits: not a part of one
    response = client.get(URL, {"q": "60012345678901"})
    assert "as a CKYC number (KIN), exactly" in response.content.decode()


def test_kin_search_does_not_find_another_branchs_record(
    client: Client, alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    theirs = registered(new_record(mallory, branch_b, 1), "60012345678901")
    client.force_login(alice)

    assert refs(client.get(URL, {"q": "60012345678901"})) == []
    client.force_login(mallory)
    assert refs(client.get(URL, {"q": "60012345678901"})) == [theirs.kyc_ref_no]


def test_status_filter_offers_and_applies_the_registered_states(
    client: Client, alice: User, branch_a: Branch
) -> None:
    done = registered(new_record(alice, branch_a, 1), "60012345678901")
    earlier = registered(new_record(alice, branch_a, 2), "60012345678902", preexisting=True)
    waiting = accepted(new_record(alice, branch_a, 3))
    client.force_login(alice)

    page = client.get(URL).content.decode()
    assert '<option value="registered">Registered at CKYCR</option>' in page
    assert '<option value="preexisting">Registered before upload</option>' in page
    assert refs(client.get(URL, {"status": "registered"})) == [done.kyc_ref_no]
    assert refs(client.get(URL, {"status": "preexisting"})) == [earlier.kyc_ref_no]
    assert refs(client.get(URL, {"status": "uploaded"})) == [waiting.kyc_ref_no]


def test_date_filter_on_the_acceptance_date(client: Client, alice: User, branch_a: Branch) -> None:
    today = timezone.localdate()
    fresh = accepted(new_record(alice, branch_a, 1), days_ago=2)
    old = accepted(new_record(alice, branch_a, 2), days_ago=9)
    new_record(alice, branch_a, 3)  # never accepted
    client.force_login(alice)

    def accepted_between(start: int | None, end: int | None) -> set[str]:
        params = {"date_on": "accepted"}
        if start is not None:
            params["date_from"] = (today - timedelta(days=start)).isoformat()
        if end is not None:
            params["date_to"] = (today - timedelta(days=end)).isoformat()
        return set(refs(client.get(URL, params)))

    assert accepted_between(3, None) == {fresh.kyc_ref_no}
    assert accepted_between(10, 8) == {old.kyc_ref_no}
    assert accepted_between(None, 0) == {fresh.kyc_ref_no, old.kyc_ref_no}
    assert accepted_between(1, 0) == set()


def test_date_filter_on_the_registration_date(client: Client, alice: User, branch_a: Branch) -> None:
    done = registered(new_record(alice, branch_a, 1), "60012345678901")
    accepted(new_record(alice, branch_a, 2))
    client.force_login(alice)
    today = timezone.localdate().isoformat()

    assert refs(client.get(URL, {"date_on": "registered", "date_from": today})) == [done.kyc_ref_no]


def test_a_registered_record_shows_no_deadline_and_a_waiting_one_does(
    client: Client, alice: User, branch_a: Branch
) -> None:
    today = timezone.localdate()
    registered(
        new_record(alice, branch_a, 1, kyc_verification_date=today - timedelta(days=30)), "60012345678901"
    )
    accepted(new_record(alice, branch_a, 2, kyc_verification_date=today - timedelta(days=30)))
    client.force_login(alice)

    page = client.get(URL, {"sort": "ref"}).content.decode()
    rows = page.split("<tbody>")[1].split("</tr>")
    assert "Overdue" not in rows[0] and "REF-BRA-000001" in rows[0]
    assert "Overdue" in rows[1] and "REF-BRA-000002" in rows[1]


def test_auto_search_picks_pan_reference_or_name() -> None:
    assert listing.ListQuery(q="ABCPE1234F").search_by == "pan"
    assert listing.ListQuery(q="60012345678901").search_by == "kin"
    assert listing.ListQuery(q="6001 2345 6789 01").search_by == "kin"
    assert listing.ListQuery(q="600123456789").search_by == "ref"
    assert listing.ListQuery(q="BR01-2026").search_by == "ref"
    assert listing.ListQuery(q="Ravi Kumar").search_by == "name"
    assert listing.ListQuery(q="Ravi", by="ref").search_by == "ref"


# Sort and pages -----------------------------------------------------------------------------------------


def test_sort_by_reference_and_by_due_date(client: Client, alice: User, branch_a: Branch) -> None:
    today = timezone.localdate()
    b = with_ref(alice, branch_a, "B-1", kyc_verification_date=today - timedelta(days=2))
    a = with_ref(alice, branch_a, "a-2", kyc_verification_date=today)
    c = with_ref(alice, branch_a, "C-3", kyc_verification_date=today - timedelta(days=5))
    client.force_login(alice)

    assert refs(client.get(URL, {"sort": "ref"})) == [a.kyc_ref_no, b.kyc_ref_no, c.kyc_ref_no]
    assert refs(client.get(URL, {"sort": "-ref"})) == [c.kyc_ref_no, b.kyc_ref_no, a.kyc_ref_no]
    assert refs(client.get(URL, {"sort": "due"})) == [c.kyc_ref_no, b.kyc_ref_no, a.kyc_ref_no]
    assert refs(client.get(URL)) == [c.kyc_ref_no, a.kyc_ref_no, b.kyc_ref_no]  # last change first


@pytest.mark.parametrize("sort", ["-updated", "created", "ref", "-ref", "due"])
def test_next_and_previous_walk_every_record_once(
    client: Client, alice: User, branch_a: Branch, sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "PER_PAGE", 4)
    made = many(alice, branch_a, 10)
    client.force_login(alice)

    pages, params = [], {"sort": sort}
    while True:
        page = client.get(URL, params).context["page"]
        pages.append([r.kyc_ref_no for r in page.rows])
        if not page.has_next:
            break
        params = {"sort": sort, "after": page.next_cursor}
    back = client.get(URL, {"sort": sort, "before": page.previous_cursor}).context["page"]

    assert [len(p) for p in pages] == [4, 4, 2]
    assert sorted(ref for p in pages for ref in p) == sorted(r.kyc_ref_no for r in made)
    assert [r.kyc_ref_no for r in back.rows] == pages[1]
    assert back.has_next and back.has_previous


def test_a_tampered_cursor_shows_the_first_page(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)

    response = client.get(URL, {"after": "not-a-cursor!"})

    assert refs(response) == [record.kyc_ref_no]
    assert response.context["form"].cursor_error


def test_count_is_capped(
    client: Client, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    many(alice, branch_a, 5)
    client.force_login(alice)

    response = client.get(URL)

    assert response.context["page"].count_label == "3+"
    assert "3+ records match" in response.content.decode()


def queries_for(client: Client, params: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, params).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_records_or_page(
    client: Client, alice: User, branch_a: Branch, django_assert_num_queries: Any
) -> None:
    many(alice, branch_a, 5)
    client.force_login(alice)
    client.get(URL)  # the session is loaded once per request either way
    with_five = queries_for(client, {})
    many(alice, branch_a, 100, start=6)
    page_one = client.get(URL).context["page"]

    with django_assert_num_queries(with_five):
        client.get(URL)
    with django_assert_num_queries(with_five):
        client.get(URL, {"after": page_one.next_cursor})
    with django_assert_num_queries(with_five):
        client.get(URL, {"q": "RAVI KUMAR", "status": "draft", "due": "soon", "sort": "due"})


# Scope -------------------------------------------------------------------------------------------------


def test_list_shows_only_the_users_branches(
    client: Client, alice: User, mallory: User, branch_a: Branch, branch_b: Branch
) -> None:
    mine, theirs = new_record(alice, branch_a), new_record(mallory, branch_b)
    client.force_login(alice)

    assert refs(client.get(URL)) == [mine.kyc_ref_no]
    # Asking for the other branch by id is not a choice the maker has: ignored, and still nothing of it.
    assert theirs.kyc_ref_no not in refs(client.get(URL, {"branch": branch_b.pk}))
    assert theirs.kyc_ref_no not in refs(client.get(URL, {"q": theirs.kyc_ref_no}))
    assert client.get(reverse("records:detail", args=[theirs.pk])).status_code == 404


def test_auditor_lists_every_branch(
    client: Client, alice: User, mallory: User, branch_a: Branch, branch_b: Branch, auditor: User
) -> None:
    mine, theirs = new_record(alice, branch_a), new_record(mallory, branch_b)
    client.force_login(auditor)

    assert set(refs(client.get(URL))) == {mine.kyc_ref_no, theirs.kyc_ref_no}


# PostgreSQL plans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"q": "REF-BRA-00"}, "record_ref_prefix"),
        ({"q": "ABCPE1234F"}, "record_pan_hash"),
        ({"q": "60012345678901"}, "record_kin_hash"),
        ({"q": "RAVI", "by": "name"}, "record_name_token_unique"),
        ({"due": "overdue"}, "record_due_open"),
    ],
)
def test_searches_and_filters_can_use_their_index(
    alice: User, branch_a: Branch, auditor: User, params: dict[str, str], index: str
) -> None:
    """With sequential scans priced out, the planner picks the index meant for each (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        pytest.fail("Plans are PostgreSQL's: run with DATABASE_URL set (make test).")
    from records import selectors

    many(alice, branch_a, 3)
    form = listing.RecordListForm(params, branches=[], makers=[])
    records = selectors.record_search(auditor, form.list_query()).order_by()
    with connection.cursor() as cursor:
        # Statistics of this test's records, not those autovacuum took while earlier tests' workers had
        # committed thousands (run after tests/uploads, the overdue filter went through the makers' index).
        cursor.execute("ANALYZE records_kycrecord")
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = records[:51].explain()

    assert index in plan


def test_date_filter_on_the_entry_date_uses_local_days(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    client.force_login(alice)

    assert refs(client.get(URL, {"date_on": "created", "date_from": today.isoformat()})) == [
        record.kyc_ref_no
    ]
    assert refs(client.get(URL, {"date_on": "created", "date_to": yesterday.isoformat()})) == []
    assert refs(client.get(URL, {"date_on": "created", "date_to": today.isoformat()})) == [record.kyc_ref_no]


def test_deadline_filters_list_the_most_urgent_first(client: Client, alice: User, branch_a: Branch) -> None:
    today = timezone.localdate()
    later = new_record(alice, branch_a, 1, kyc_verification_date=today - timedelta(days=11))
    sooner = new_record(alice, branch_a, 2, kyc_verification_date=today - timedelta(days=13))
    client.force_login(alice)

    response = client.get(URL, {"due": "overdue"})

    assert refs(response) == [sooner.kyc_ref_no, later.kyc_ref_no]
    assert response.context["page"].sort.column == "upload_due_on"


# One search box: a reference's letters, a name, and date ranges that cannot match ---------------------------


@pytest.mark.parametrize("text", ["MUMQA", "mumqa", "MUM", "Mum"])
def test_anything_finds_a_reference_by_its_letters_only_beginning(
    client: Client, alice: User, branch_a: Branch, text: str
) -> None:
    hit = with_ref(alice, branch_a, "MUMQA0002", applicant_first_name="RAVI")
    with_ref(alice, branch_a, "DELQA0001", applicant_first_name="MUMTAZ")
    client.force_login(alice)

    response = client.get(URL, {"q": text})

    assert refs(response) == [hit.kyc_ref_no]
    assert "(as the start of a KYC ref. no.)" in response.content.decode()


def test_anything_with_letters_no_reference_begins_with_is_a_name(
    client: Client, alice: User, branch_a: Branch
) -> None:
    ravi = with_ref(alice, branch_a, "MUMQA0002", applicant_first_name="RAVI")
    client.force_login(alice)

    response = client.get(URL, {"q": "ravi"})

    assert refs(response) == [ravi.kyc_ref_no]
    assert "(as a name, whole words)" in response.content.decode()


def test_letters_only_probe_sees_only_the_users_branches(
    client: Client, alice: User, branch_a: Branch, mallory: User, branch_b: Branch
) -> None:
    # Another branch's reference beginning must neither show nor turn the search into a reference search.
    with_ref(mallory, branch_b, "RAVI0001")
    mine = with_ref(alice, branch_a, "MUM0001", applicant_first_name="RAVI")
    client.force_login(alice)

    assert refs(client.get(URL, {"q": "RAVI"})) == [mine.kyc_ref_no]


def test_a_date_range_ending_before_it_starts_says_so(client: Client, alice: User, branch_a: Branch) -> None:
    record = new_record(alice, branch_a)
    client.force_login(alice)
    today = timezone.localdate()

    response = client.get(
        URL, {"date_from": today.isoformat(), "date_to": (today - timedelta(days=3)).isoformat()}
    )

    assert refs(response) == [record.kyc_ref_no]
    assert "is before From" in response.content.decode()
    assert response.context["query"].date_from is None
