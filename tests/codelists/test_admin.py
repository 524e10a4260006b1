"""Code lists in the administration site: admins add and change entries, every change audited; codes are
fixed once created and entries are never deleted."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from codelists.models import NameTitle, State
from codelists.selectors import code_book
from institutions.models import AuditEvent, Branch, Role, User
from tests.conftest import make_user, otp_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, erin: User) -> Client:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    otp_login(client, erin)
    return client


def entry_form(**values: Any) -> dict[str, Any]:
    return {"code": "", "label": "", "is_active": "on", "sort_order": "0", "note": ""} | values


def test_admin_adds_an_entry_and_the_event_says_who_and_what(admin_client: Client, erin: User) -> None:
    response = admin_client.post(
        "/admin/codelists/nametitle/add/", entry_form(code="MX", label="Mx", sort_order="60")
    )
    assert response.status_code == 302
    entry = NameTitle.objects.get(code="MX")
    event = AuditEvent.objects.get(action="code_entry_created")
    assert (event.actor, event.object_type, event.object_id) == (erin, "NameTitle", str(entry.pk))
    assert event.detail["list"] == "name_titles" and event.detail["changes"]["label"] == [None, "Mx"]
    assert "MX" in code_book().codes("name_titles")


def test_admin_deactivates_an_entry_audited_old_to_new(admin_client: Client) -> None:
    miss = NameTitle.objects.get(code="MISS")
    form = entry_form(label=miss.label, sort_order=str(miss.sort_order), note=miss.note)
    del form["is_active"]  # the checkbox unticked
    response = admin_client.post(f"/admin/codelists/nametitle/{miss.pk}/change/", form)
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="code_entry_changed")
    assert event.detail["changes"] == {"is_active": [True, False]}
    assert "MISS" not in code_book().codes("name_titles")


def test_a_code_cannot_be_changed_once_created(admin_client: Client) -> None:
    mh = State.objects.get(code="MH")
    form = entry_form(code="ZZ", label="Maharashtra", sort_order=str(mh.sort_order), note=mh.note)
    admin_client.post(f"/admin/codelists/state/{mh.pk}/change/", form | {"pin_master_name": "MAHARASHTRA"})
    assert State.objects.filter(code="MH").exists() and not State.objects.filter(code="ZZ").exists()


def test_a_code_longer_than_the_record_field_is_refused_naming_the_field(admin_client: Client) -> None:
    response = admin_client.post("/admin/codelists/gender/add/", entry_form(code="MF", label="Both"))
    assert response.status_code == 200
    assert "code" in response.context["adminform"].form.errors
    assert not AuditEvent.objects.filter(action="code_entry_created").exists()


def test_entries_cannot_be_deleted(admin_client: Client) -> None:
    miss = NameTitle.objects.get(code="MISS")
    assert admin_client.get(f"/admin/codelists/nametitle/{miss.pk}/delete/").status_code == 403
    assert NameTitle.objects.filter(pk=miss.pk).exists()


def test_the_pin_master_is_read_only_in_the_admin(admin_client: Client) -> None:
    assert admin_client.get("/admin/codelists/pincode/?q=400001").status_code == 200
    assert admin_client.get("/admin/codelists/pincode/add/").status_code == 403


def test_a_maker_cannot_reach_the_code_lists(client: Client, branch_a: Branch) -> None:
    otp_login(client, make_user("molly", Role.MAKER, branch_a))
    assert client.get("/admin/codelists/nametitle/", follow=True).status_code == 403
