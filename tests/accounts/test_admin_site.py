"""The administration site reads as the portal's: its own title, only the models an administrator uses
there, and new code-list entries placed after the last one."""

from __future__ import annotations

import pytest
from django.test import Client

from codelists.models import NameTitle
from institutions.models import User
from tests.conftest import otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, erin: User) -> Client:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    otp_login(client, erin)
    return client


def test_index_is_titled_for_the_portal(admin_client: Client) -> None:
    body = admin_client.get("/admin/").content.decode()
    assert "CKYC Portal administration" in body
    assert "Django administration" not in body and "Django site admin" not in body


def test_index_hides_groups_and_authenticator_devices(admin_client: Client) -> None:
    body = admin_client.get("/admin/").content.decode()
    assert "/admin/auth/group/" not in body and "OTP_TOTP" not in body and "otp_totp" not in body
    assert admin_client.get("/admin/auth/group/add/").status_code == 404
    assert admin_client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert "/admin/codelists/nametitle/" in body  # what administrators come for is still there


def test_new_code_entry_defaults_to_after_the_last(admin_client: Client) -> None:
    last = max(NameTitle.objects.values_list("sort_order", flat=True))
    response = admin_client.get("/admin/codelists/nametitle/add/")
    initial = response.context["adminform"].form.initial["sort_order"]
    assert initial > last and initial % 10 == 0
