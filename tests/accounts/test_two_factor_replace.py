"""Replacing the authenticator needs the password and a current code, and is audited;
a first enrolment is audited too."""

from __future__ import annotations

import time

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.views import REPLACE_SESSION_KEY
from institutions.models import AuditEvent, User
from tests.conftest import PASSWORD, otp_login, totp_code

ENROL = "/accounts/two-factor/enrol/"
REPLACE = "/accounts/two-factor/replace/"


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def pending(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def test_verified_user_asking_for_a_new_device_is_asked_for_password_and_code(
    client: Client, bob: User
) -> None:
    otp_login(client, bob)

    response = client.get(ENROL)

    assert (response.status_code, response.url.split("?")[0]) == (302, REPLACE)
    assert pending(bob) is None  # no new key is shown before the check
    assert "Your password" in client.get(REPLACE).content.decode()


def test_wrong_password_with_the_right_code_starts_no_replacement(client: Client, bob: User) -> None:
    device = otp_login(client, bob)

    response = client.post(REPLACE, {"password": "not-it", "code": totp_code(device)})

    assert response.context["form"].errors == {"password": ["That is not your password."]}
    assert pending(bob) is None and client.get(ENROL).url.split("?")[0] == REPLACE


def test_right_password_with_a_wrong_code_starts_no_replacement(client: Client, bob: User) -> None:
    device = otp_login(client, bob)

    response = client.post(REPLACE, {"password": PASSWORD, "code": wrong(totp_code(device))})

    assert list(response.context["form"].errors) == ["code"]
    assert pending(bob) is None


def test_password_and_current_code_let_a_new_device_replace_the_old_one_audited(
    client: Client, bob: User
) -> None:
    old = otp_login(client, bob)
    response = client.post(REPLACE, {"password": PASSWORD, "code": totp_code(old), "next": "/records/"})
    assert response.url.split("?")[0] == ENROL
    new = pending(bob)
    assert new is not None

    response = client.post(ENROL, {"code": totp_code(new), "next": "/records/"})

    assert (response.status_code, response.url) == (302, "/records/")
    assert list(TOTPDevice.objects.filter(user=bob).values_list("pk", "confirmed")) == [(new.pk, True)]
    event = AuditEvent.objects.get(action="two_factor_replaced")
    assert (event.actor, event.object_id) == (bob, str(bob.pk))
    assert new.key not in str(event.detail) and old.key not in str(event.detail)


def test_a_pending_device_cannot_replace_the_old_one_without_the_check(client: Client, bob: User) -> None:
    old = otp_login(client, bob)
    sneaky = TOTPDevice.objects.create(user=bob, name="sneaky", confirmed=False)

    response = client.post(ENROL, {"code": totp_code(sneaky)})

    assert response.url.split("?")[0] == REPLACE
    assert TOTPDevice.objects.get(user=bob, confirmed=True).pk == old.pk
    assert not AuditEvent.objects.filter(action="two_factor_replaced").exists()


def test_the_check_expires(client: Client, bob: User) -> None:
    old = otp_login(client, bob)
    client.post(REPLACE, {"password": PASSWORD, "code": totp_code(old)})
    session = client.session
    session[REPLACE_SESSION_KEY] = {**session[REPLACE_SESSION_KEY], "until": time.time() - 1}
    session.save()

    response = client.post(ENROL, {"code": totp_code(pending(bob))})  # type: ignore[arg-type]

    assert response.url.split("?")[0] == REPLACE
    assert TOTPDevice.objects.get(user=bob, confirmed=True).pk == old.pk


def test_first_enrolment_is_audited(client: Client, alice: User) -> None:
    client.force_login(alice)
    client.get(ENROL)

    client.post(ENROL, {"code": totp_code(pending(alice))})  # type: ignore[arg-type]

    event = AuditEvent.objects.get(action="two_factor_enrolled")
    assert event.actor == alice and not AuditEvent.objects.filter(action="two_factor_replaced").exists()


def test_audit_log_names_the_two_factor_events(client: Client, alice: User, erin: User) -> None:
    client.force_login(alice)
    client.get(ENROL)
    client.post(ENROL, {"code": totp_code(pending(alice))})  # type: ignore[arg-type]
    admin = Client()
    otp_login(admin, erin)

    assert "Two-factor set up" in admin.get("/reports/audit/").content.decode()
