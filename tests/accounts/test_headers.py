"""Response headers: CSP without inline script or style, framing and referrer rules, no caching of pages
shown to a signed-in user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from institutions.models import User

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def csp_directives(client: Client, url: str) -> dict[str, list[str]]:
    header = client.get(url)["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize(
    ("directive", "sources"),
    [
        ("default-src", ["'self'"]),
        ("script-src", ["'self'"]),
        ("style-src", ["'self'"]),
        ("img-src", ["'self'", "data:"]),
        ("frame-ancestors", ["'none'"]),
        ("form-action", ["'self'"]),
    ],
)
def test_pages_send_a_strict_content_security_policy(
    client: Client, db: None, directive: str, sources: list[str]
) -> None:
    directives = csp_directives(client, reverse("login"))

    assert directives[directive] == sources


def test_pages_forbid_framing_and_sniffing_and_limit_the_referrer(client: Client, db: None) -> None:
    response = client.get(reverse("login"))

    assert (response["X-Frame-Options"], response["Referrer-Policy"], response["X-Content-Type-Options"]) == (
        "DENY",
        "same-origin",
        "nosniff",
    )


def test_templates_have_no_inline_script_or_style() -> None:
    """CSP would block them: scripts come from static files, styles from the stylesheet."""
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE
    )
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in inline.finditer(path.read_text(encoding="utf-8"))
    ]

    assert offenders == []


# Caching -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/records/", "/accounts/password_change/"])
def test_pages_for_a_signed_in_user_are_never_stored(client: Client, alice: User, url: str) -> None:
    client.force_login(alice)

    response = client.get(url)

    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"


def test_a_signed_in_users_health_check_is_not_stored_either(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.get(reverse("healthz"))

    assert "no-store" in response["Cache-Control"]


def test_an_anonymous_response_is_not_marked_no_store(client: Client, db: None) -> None:
    response = client.get(reverse("healthz"))

    assert "no-store" not in response.get("Cache-Control", "")
