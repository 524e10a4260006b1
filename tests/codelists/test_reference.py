"""The Codes page: every list's active codes for every signed-in user, and the search of the long lists."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from codelists import services
from codelists.models import Gender, NameTitle
from codelists.selectors import CODE_LISTS, code_list_sections
from institutions.models import Role, User
from tests.conftest import make_user, otp_login

pytestmark = pytest.mark.django_db

URL = "/codes/"


def page(user: User, **params: str) -> str:
    client = Client()
    otp_login(client, user)
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_codes_page_lists_every_code_list_with_codes_labels_and_import_columns(alice: User) -> None:
    html = page(alice)
    for _list_name, title in CODE_LISTS:
        assert f">{title}</h2>" in html
    assert "<code>M</code></td><td>Male</td>" in html
    assert "<code>02</code></td><td>Passport</td>" in html
    assert '<code class="me-2">MH</code>Maharashtra</li>' in html
    assert '<code class="me-2">IN</code>India</li>' in html
    assert "<code>FATHER</code></td><td>Father</td>" in html
    assert "(<code>poa_state</code>)" in html and "(<code>current_state</code>)" in html


@pytest.mark.parametrize("role", [Role.MAKER, Role.CHECKER, Role.ADMIN, Role.AUDITOR])
def test_every_role_may_read_the_codes(role: Role, branch_a: object) -> None:
    assert "Maharashtra" in page(make_user(f"user-{role}", role))


def test_an_inactive_code_is_not_listed(alice: User) -> None:
    NameTitle.objects.filter(code="DR").update(is_active=False)
    services.code_book_touch()
    html = page(alice)
    assert "<code>DR</code>" not in html
    assert "<code>MR</code>" in html


def test_search_narrows_states_and_countries_and_keeps_the_short_lists_whole(alice: User) -> None:
    html = page(alice, q="maha")
    assert "Maharashtra" in html
    assert "Karnataka" not in html  # another state
    assert "Bhutan" not in html  # a country
    assert "<code>F</code></td><td>Female</td>" in html  # short lists are not searched
    html = page(alice, q="bt")  # a code matches exactly
    assert "Bhutan" in html and "India</li>" not in html


def test_search_with_no_match_says_so(alice: User) -> None:
    html = page(alice, q="atlantis")
    assert "No states match your search." in html
    assert "No countries match your search." in html


def test_sections_follow_the_code_book_order_and_name_the_fields_using_them(alice: User) -> None:
    Gender.objects.filter(code="T").update(sort_order=0)
    services.code_book_touch()
    sections = {s.list_name: s for s in code_list_sections()}
    assert sections["genders"].entries[0] == ("T", "Transgender")
    assert [f for f, _ in sections["name_titles"].fields] == [
        "applicant_name_title",
        "applicant_rel_name_title",
    ]


def test_the_record_form_and_the_nav_link_to_the_codes_page(alice: User) -> None:
    client = Client()
    otp_login(client, alice)
    html = client.get(reverse("records:create")).content.decode()
    assert html.count(f'href="{URL}"') == 2  # navigation and the form's own link
