"""No self-service password reset: an administrator sets passwords, and the log-in page says so."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
    ],
)
def test_password_reset_pages_do_not_exist(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404
    assert client.post(path, {"email": "alice@example.com"}).status_code == 404


@pytest.mark.parametrize(
    "name", ["password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"]
)
def test_password_reset_urls_are_not_named(name: str) -> None:
    with pytest.raises(NoReverseMatch):
        reverse(name, kwargs={"uidb64": "MQ", "token": "x"} if name == "password_reset_confirm" else None)


def test_login_page_says_an_administrator_sets_passwords(client: Any) -> None:
    body = client.get(reverse("login")).content.decode()
    assert "administrator" in body and "password" in body.lower()
    assert "password_reset" not in body


def test_password_change_stays(client: Any) -> None:
    assert reverse("password_change") == "/accounts/password_change/"
    assert reverse("password_change_done") == "/accounts/password_change/done/"
