"""Two-factor authentication: required for admins and checkers, optional for makers and auditors; the
enrolment and code pages; the administration site behind it."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import Institution, Role, User
from tests.conftest import PASSWORD, make_user, otp_login, totp_code, totp_device

DASHBOARD = "/"
ENROL = "/accounts/two-factor/enrol/"
VERIFY = "/accounts/two-factor/verify/"
REPLACE = "/accounts/two-factor/replace/"


@pytest.fixture
def ivan(institution: Institution) -> User:
    """An auditor."""
    return make_user("ivan", Role.AUDITOR)


def path_of(url: str) -> str:
    return url.split("?")[0]


# Who must pass the second factor -----------------------------------------------------------------------


@pytest.mark.parametrize("username", ["bob", "erin"])
def test_checker_or_admin_without_a_device_is_sent_to_enrolment(
    client: Client, bob: User, erin: User, username: str
) -> None:
    client.force_login(User.objects.get(username=username))

    response = client.get(reverse("records:list"))

    assert (response.status_code, response.url) == (302, f"{ENROL}?next={quote('/records/', safe='')}")


@pytest.mark.parametrize("username", ["bob", "erin"])
def test_checker_or_admin_with_a_device_is_asked_for_a_code(
    client: Client, bob: User, erin: User, username: str
) -> None:
    user = User.objects.get(username=username)
    totp_device(user)
    client.force_login(user)

    response = client.get(DASHBOARD)

    assert (response.status_code, path_of(response.url)) == (302, VERIFY)


@pytest.mark.parametrize("username", ["alice", "ivan"])
def test_maker_or_auditor_without_a_device_needs_no_second_factor(
    client: Client, alice: User, ivan: User, username: str
) -> None:
    client.force_login(User.objects.get(username=username))

    response = client.get(DASHBOARD)

    assert response.status_code == 200


def test_maker_who_enrolled_is_asked_for_a_code(client: Client, alice: User) -> None:
    totp_device(alice)
    client.force_login(alice)

    response = client.get(DASHBOARD)

    assert (response.status_code, path_of(response.url)) == (302, VERIFY)


def test_verified_checker_reaches_the_pages(client: Client, bob: User) -> None:
    otp_login(client, bob)

    response = client.get(reverse("records:review_queue"))

    assert response.status_code == 200


def test_unconfirmed_device_does_not_count_as_enrolled(client: Client, bob: User) -> None:
    TOTPDevice.objects.create(user=bob, name="pending", confirmed=False)
    client.force_login(bob)

    response = client.get(DASHBOARD)

    assert path_of(response.url) == ENROL


def test_a_state_changing_post_is_refused_before_the_second_factor(client: Client, bob: User) -> None:
    client.force_login(bob)

    response = client.post(reverse("uploads:send_now"))

    assert (response.status_code, response.url) == (302, ENROL)


def test_unverified_user_can_still_log_out(client: Client, bob: User) -> None:
    client.force_login(bob)

    client.post(reverse("logout"))

    assert "_auth_user_id" not in client.session


def test_health_check_needs_no_second_factor(client: Client, bob: User) -> None:
    client.force_login(bob)

    response = client.get(reverse("healthz"))

    assert response.status_code == 200


# Enrolment ---------------------------------------------------------------------------------------------


def pending_device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


def test_enrolment_page_shows_a_qr_code_image_and_the_key(client: Client, bob: User) -> None:
    client.force_login(bob)

    text = client.get(ENROL).content.decode()

    secret = base64.b32encode(pending_device(bob).bin_key).decode()
    shown = re.search(r"<code[^>]*>([A-Z2-7 ]+)</code>", text)
    assert 'src="data:image/svg+xml' in text and shown and shown.group(1).replace(" ", "") == secret


def test_enrolment_page_keeps_its_key_when_reloaded(client: Client, bob: User) -> None:
    client.force_login(bob)
    client.get(ENROL)
    first = pending_device(bob).key

    client.get(ENROL)

    assert pending_device(bob).key == first


def test_enrolment_with_the_right_code_turns_two_factor_on(client: Client, bob: User) -> None:
    client.force_login(bob)
    client.get(ENROL)

    response = client.post(ENROL, {"code": totp_code(pending_device(bob)), "next": "/records/"})

    assert (response.status_code, response.url) == (302, "/records/")
    assert TOTPDevice.objects.get(user=bob).confirmed
    assert client.get(DASHBOARD).status_code == 200


def test_enrolment_with_a_wrong_code_turns_nothing_on(client: Client, bob: User) -> None:
    client.force_login(bob)
    client.get(ENROL)
    right = totp_code(pending_device(bob))

    response = client.post(ENROL, {"code": "000000" if right != "000000" else "111111"})

    assert "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=bob, confirmed=True).exists()


def test_enrolment_refuses_a_user_who_has_a_device_but_has_not_passed_it(client: Client, bob: User) -> None:
    totp_device(bob)
    client.force_login(bob)

    response = client.get(ENROL)

    assert path_of(response.url) == VERIFY


def test_enrolling_a_new_phone_replaces_the_old_device(client: Client, bob: User) -> None:
    old = otp_login(client, bob)
    client.post(REPLACE, {"password": PASSWORD, "code": totp_code(old)})

    client.post(ENROL, {"code": totp_code(pending_device(bob))})

    assert list(TOTPDevice.objects.filter(user=bob).values_list("pk", flat=True)) != [old.pk]
    assert TOTPDevice.objects.filter(user=bob).count() == 1


def test_maker_may_enrol(client: Client, alice: User) -> None:
    client.force_login(alice)
    client.get(ENROL)

    client.post(ENROL, {"code": totp_code(pending_device(alice))})

    assert TOTPDevice.objects.get(user=alice).confirmed


# The code page -----------------------------------------------------------------------------------------


def test_right_code_lets_the_user_in_to_the_page_asked_for(client: Client, bob: User) -> None:
    device = totp_device(bob)
    client.force_login(bob)

    response = client.post(VERIFY, {"code": totp_code(device), "next": "/records/"})

    assert (response.status_code, response.url) == (302, "/records/")
    assert client.get(reverse("records:review_queue")).status_code == 200


def test_wrong_code_keeps_the_user_out(client: Client, bob: User) -> None:
    device = totp_device(bob)
    client.force_login(bob)
    wrong = "000000" if totp_code(device) != "000000" else "111111"

    response = client.post(VERIFY, {"code": wrong})

    assert "That code is not right" in response.content.decode()
    assert path_of(client.get(DASHBOARD).url) == VERIFY


def test_a_used_code_is_not_accepted_again(bob: User) -> None:
    device = totp_device(bob)
    first, second = Client(), Client()
    first.force_login(bob)
    second.force_login(bob)
    code = totp_code(device)
    first.post(VERIFY, {"code": code})

    second.post(VERIFY, {"code": code})

    assert path_of(second.get(DASHBOARD).url) == VERIFY


def test_repeated_wrong_codes_are_throttled(client: Client, bob: User) -> None:
    device = totp_device(bob)
    client.force_login(bob)
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    for _ in range(3):
        client.post(VERIFY, {"code": wrong})

    response = client.post(VERIFY, {"code": totp_code(device)})

    assert "Too many wrong codes" in response.content.decode()
    assert path_of(client.get(DASHBOARD).url) == VERIFY


def test_code_page_does_not_redirect_off_site(client: Client, bob: User) -> None:
    device = totp_device(bob)
    client.force_login(bob)

    response = client.post(VERIFY, {"code": totp_code(device), "next": "https://evil.example/"})

    assert response.url == DASHBOARD


def test_code_page_sends_a_user_without_a_device_to_enrolment(client: Client, bob: User) -> None:
    client.force_login(bob)

    response = client.get(VERIFY)

    assert path_of(response.url) == ENROL


def test_full_log_in_of_a_checker_asks_for_the_code(client: Client, bob: User) -> None:
    device = totp_device(bob)
    client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert path_of(client.get(DASHBOARD).url) == VERIFY

    client.post(VERIFY, {"code": totp_code(device)})

    assert client.get(DASHBOARD).status_code == 200


# The administration site -------------------------------------------------------------------------------


def test_verified_admin_opens_the_admin_site(client: Client, erin: User) -> None:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    otp_login(client, erin)

    response = client.get("/admin/")

    assert response.status_code == 200


def test_admin_site_refuses_staff_without_a_verified_device_on_its_own(
    client: Client, erin: User, settings: Any
) -> None:
    # Without the portal's middleware, the admin site itself still demands the second factor.
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "accounts.middleware.TwoFactorRequiredMiddleware"
    ]
    erin.is_staff = erin.is_superuser = True
    erin.save()
    client.force_login(erin)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0].startswith(ENROL)


def test_admin_site_never_shows_another_users_two_factor_secret(
    client: Client, erin: User, bob: User
) -> None:
    erin.is_staff = erin.is_superuser = True
    erin.save()
    otp_login(client, erin)
    device = totp_device(bob)

    response = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")

    # Devices are not in the administration site at all: "Reset two-factor" on the user's page removes one.
    assert response.status_code == 404 and device.key not in response.content.decode()


def test_code_page_shows_no_navigation_that_leads_back_to_it(client: Client, bob: User) -> None:
    totp_device(bob)
    client.force_login(bob)

    body = client.get(reverse("accounts:otp_verify")).content.decode()

    assert "enter your two-factor code" in body and "Log out" in body
    assert reverse("records:list") not in body and reverse("password_change") not in body


def test_admin_log_in_page_sends_anonymous_users_to_the_portal_log_in(client: Client) -> None:
    response = client.get("/admin/login/?next=/admin/")

    assert (response.status_code, response.url) == (302, f"{reverse('login')}?next=/admin/")
