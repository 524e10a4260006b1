"""Session lifetime (idle and absolute) and password changes ending the user's other sessions."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.middleware import LOGIN_AT_SESSION_KEY
from institutions.models import User
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-2026"


def age_session(client: Client, seconds: float) -> None:
    session = client.session
    session[LOGIN_AT_SESSION_KEY] = time.time() - seconds
    session.save()


def test_idle_timeout_is_fifteen_minutes_by_default(client: Client, alice: User) -> None:
    client.force_login(alice)

    assert client.session.get_expiry_age() == 15 * 60


def test_session_idle_past_its_age_is_signed_out(client: Client, alice: User) -> None:
    client.force_login(alice)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    response = client.get(reverse("reports:dashboard"))

    assert (response.status_code, response.url.split("?")[0]) == (302, reverse("login"))


def test_each_request_pushes_the_idle_deadline_back(client: Client, alice: User) -> None:
    client.force_login(alice)
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(seconds=30))

    client.get(reverse("reports:dashboard"))

    remaining = Session.objects.get(session_key=key).expire_date - timezone.now()
    assert remaining > timedelta(minutes=14)


def test_absolute_timeout_is_ten_hours_by_default() -> None:
    assert settings.PORTAL_SESSION_MAX_SECONDS == 10 * 60 * 60


def test_log_in_starts_the_absolute_clock(client: Client, alice: User) -> None:
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert time.time() - client.session[LOGIN_AT_SESSION_KEY] < 60


def test_session_younger_than_the_limit_stays_signed_in(client: Client, alice: User) -> None:
    client.force_login(alice)
    age_session(client, settings.PORTAL_SESSION_MAX_SECONDS - 60)

    response = client.get(reverse("reports:dashboard"))

    assert response.status_code == 200


def test_session_older_than_the_limit_is_signed_out_however_active(client: Client, alice: User) -> None:
    client.force_login(alice)
    age_session(client, settings.PORTAL_SESSION_MAX_SECONDS + 1)

    response = client.get(reverse("reports:dashboard"))

    assert (response.status_code, response.url.split("?")[0]) == (302, reverse("login"))


def test_session_older_than_the_limit_says_why_it_ended(client: Client, alice: User) -> None:
    client.force_login(alice)
    age_session(client, settings.PORTAL_SESSION_MAX_SECONDS + 1)

    response = client.get(reverse("reports:dashboard"), follow=True)

    assert any("10-hour limit" in str(m) for m in get_messages(response.wsgi_request))


def test_signed_out_session_stays_out_on_the_next_request(client: Client, alice: User) -> None:
    client.force_login(alice)
    age_session(client, settings.PORTAL_SESSION_MAX_SECONDS + 1)
    client.get(reverse("reports:dashboard"))

    response = client.get(reverse("reports:dashboard"))

    assert response.status_code == 302


# Changing the password ---------------------------------------------------------------------------------


def change_password(client: Client) -> int:
    data = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    return client.post(reverse("password_change"), data).status_code


def test_password_change_page_opens(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.get(reverse("password_change"))

    assert (response.status_code, "Change password" in response.content.decode()) == (200, True)


def test_password_change_keeps_the_current_session(client: Client, alice: User) -> None:
    client.force_login(alice)
    change_password(client)

    response = client.get(reverse("reports:dashboard"))

    assert response.status_code == 200


def test_password_change_ends_the_users_other_sessions(alice: User) -> None:
    here, elsewhere = Client(), Client()
    here.force_login(alice)
    elsewhere.force_login(alice)
    assert elsewhere.get(reverse("reports:dashboard")).status_code == 200

    assert change_password(here) == 302
    response = elsewhere.get(reverse("reports:dashboard"))

    assert (response.status_code, response.url.split("?")[0]) == (302, reverse("login"))


def test_password_change_leaves_other_users_signed_in(alice: User, mallory: User) -> None:
    here, other = Client(), Client()
    here.force_login(alice)
    other.force_login(mallory)

    change_password(here)

    assert other.get(reverse("reports:dashboard")).status_code == 200


@pytest.mark.parametrize("new", ["short1!", "password123456"])
def test_password_change_applies_the_password_rules(client: Client, alice: User, new: str) -> None:
    client.force_login(alice)

    client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )

    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_passwords_are_hashed_with_argon2(alice: User, settings: Any) -> None:
    # The suite swaps in a fast hasher (tests/conftest.py); put the configured list back for this check.
    from ckycportal import settings as configured

    settings.PASSWORD_HASHERS = configured.PASSWORD_HASHERS
    alice.set_password("a-long-enough-passphrase")
    assert alice.password.startswith("argon2$")
