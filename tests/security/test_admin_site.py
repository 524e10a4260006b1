"""The Django administration site: administrators only, and no customer data in it."""

from __future__ import annotations

from typing import Any

import pytest

from institutions.models import Branch, Role, User
from tests.conftest import make_user, new_record, otp_login

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.MAKER, Role.CHECKER, Role.AUDITOR])
def test_verified_non_admin_gets_a_refusal_not_a_redirect_loop(
    client: Any, role: Role, branch_a: Branch
) -> None:
    otp_login(client, make_user(f"u-{role}", role, branch_a))
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 1


def test_admin_record_page_shows_no_personal_data(
    client: Any, alice: User, branch_a: Branch, erin: User
) -> None:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    record = new_record(alice, branch_a)
    otp_login(client, erin)
    response = client.get(f"/admin/records/kycrecord/{record.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert record.kyc_ref_no in body
    for value in ("ABCPE1234F", "RAVI", "9876543210", "Marine Drive", "K1234567"):
        assert value not in body


def test_institution_cannot_be_changed_in_the_admin_site(client: Any, erin: User) -> None:
    from institutions.models import Institution

    erin.is_staff = erin.is_superuser = True
    erin.save()
    otp_login(client, erin)
    institution = Institution.objects.get()
    response = client.post(
        f"/admin/institutions/institution/{institution.pk}/change/",
        {"name": "X", "api_base_url": "http://evil.example"},
    )
    assert response.status_code == 403
    assert Institution.objects.get().api_base_url != "http://evil.example"
