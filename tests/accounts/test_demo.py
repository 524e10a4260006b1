"""make run's demo users: the admin and the checker get the published demo authenticator."""

from __future__ import annotations

import base64
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.demo import DEMO_TOTP_SECRET
from institutions.models import User

pytestmark = pytest.mark.django_db
DEMO_PASSWORD = "kyc-demo-2026!"


@pytest.fixture
def seeded(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("demo-token-0123456789", encoding="utf-8")
    call_command("setup_demo", token_file=str(token), password=DEMO_PASSWORD, stdout=StringIO())


@pytest.mark.parametrize("username", ["admin", "checker"])
def test_demo_admin_and_checker_get_the_published_key(seeded: None, username: str) -> None:
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)

    assert device.bin_key == base64.b32decode(DEMO_TOTP_SECRET)


@pytest.mark.parametrize("username", ["maker", "auditor"])
def test_demo_maker_and_auditor_get_no_device(seeded: None, username: str) -> None:
    assert not TOTPDevice.objects.filter(user__username=username).exists()


def test_seeding_again_keeps_a_device_the_user_set_up_themselves(seeded: None, tmp_path: Path) -> None:
    TOTPDevice.objects.filter(user__username="checker").update(key="ab" * 20)

    call_command("setup_demo", token_file=str(tmp_path / "token"), password=DEMO_PASSWORD, stdout=StringIO())

    assert list(TOTPDevice.objects.filter(user__username="checker").values_list("key", flat=True)) == [
        "ab" * 20
    ]


def test_demo_checker_logs_in_with_a_code_from_the_published_key(client: Client, seeded: None) -> None:
    client.post(reverse("login"), {"username": "checker", "password": DEMO_PASSWORD})
    code = f"{totp(base64.b32decode(DEMO_TOTP_SECRET)):06d}"

    client.post(reverse("accounts:otp_verify"), {"code": code})

    assert client.get(reverse("reports:dashboard")).status_code == 200


def test_demo_code_command_prints_the_current_code(seeded: None, settings: Any) -> None:
    settings.DEBUG = True
    out = StringIO()
    before = f"{totp(base64.b32decode(DEMO_TOTP_SECRET)):06d}"

    call_command("demo_totp_code", "checker", stdout=out)

    after = f"{totp(base64.b32decode(DEMO_TOTP_SECRET)):06d}"  # the clock may have ticked meanwhile
    assert out.getvalue().strip() in {before, after}


def test_demo_code_command_refuses_without_debug(seeded: None, settings: Any) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("demo_totp_code", "checker", stdout=StringIO())


def test_demo_code_command_never_reads_a_real_device(seeded: None, settings: Any) -> None:
    settings.DEBUG = True
    user = User.objects.get(username="checker")
    TOTPDevice.objects.filter(user=user).update(key="ab" * 20)

    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_totp_code", "checker", stdout=StringIO())


def test_demo_code_command_without_a_name_says_how_to_ask(seeded: None, settings: Any) -> None:
    settings.DEBUG = True
    with pytest.raises(CommandError, match="make totp WHO=admin or make totp WHO=checker"):
        call_command("demo_totp_code", stdout=StringIO())
    with pytest.raises(CommandError, match="make totp WHO=admin"):
        call_command("demo_totp_code", "", stdout=StringIO())


@pytest.mark.parametrize("username", ["maker", "auditor"])
def test_demo_code_command_says_makers_and_auditors_need_no_code(
    seeded: None, settings: Any, username: str
) -> None:
    settings.DEBUG = True
    with pytest.raises(CommandError, match=f"{username} needs no code"):
        call_command("demo_totp_code", username, stdout=StringIO())
