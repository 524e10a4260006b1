"""Set-up commands (configure_institution, create_portal_user) and the institution settings page."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, Role, User
from tests.conftest import TOKEN, otp_login

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "plum-orbit-ladder-9471"


def configure(*branches: str, **options: Any) -> None:
    defaults = {
        "fi_code": "NEWFI01",
        "region_code": "MH",
        "username": "NEWUSER",
        "api_base_url": "https://verify.example.com",
    }
    call_command("configure_institution", branch=list(branches), stdout=io.StringIO(), **(defaults | options))


def branch_names(fi_code: str = "NEWFI01") -> dict[str, str]:
    return dict(Branch.objects.filter(institution__fi_code=fi_code).values_list("code", "name"))


# configure_institution ---------------------------------------------------------------------------------


def test_configure_creates_the_institution_with_its_branches() -> None:
    configure("B1:Fort", "B2:Andheri")

    assert branch_names() == {"B1": "Fort", "B2": "Andheri"}


def test_configure_again_updates_the_same_institution() -> None:
    configure("B1:Fort")

    configure("B1:Fort", region_code="KA")

    assert list(Institution.objects.values_list("fi_code", "region_code")) == [("NEWFI01", "KA")]


def test_configure_again_adds_and_renames_branches() -> None:
    configure("B1:Fort")

    configure("B1:Fort Branch", "B2:Andheri")

    assert branch_names() == {"B1": "Fort Branch", "B2": "Andheri"}


def test_configure_reads_the_token_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-abcd1234\n", encoding="utf-8")

    configure(token_file=str(token_file))

    assert Institution.objects.get().api_token == "file-token-abcd1234"


def test_configure_reads_the_token_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("stdin-token-wxyz9876\n"))

    configure(token_file="-")

    assert Institution.objects.get().api_token == "stdin-token-wxyz9876"


def test_configure_without_a_token_file_keeps_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-abcd1234", encoding="utf-8")
    configure(token_file=str(token_file))

    configure(region_code="KA")

    assert Institution.objects.get().api_token == "file-token-abcd1234"


def test_configure_refuses_a_token_keyword() -> None:
    with pytest.raises((TypeError, CommandError)):
        configure(token="argv-token-0000")


def test_configure_refuses_a_token_on_the_command_line() -> None:
    with pytest.raises(CommandError):
        call_command(
            "configure_institution",
            "--fi-code=NEWFI01",
            "--region-code=MH",
            "--username=NEWUSER",
            "--api-base-url=https://verify.example.com",
            "--token=argv-token-0000",
            stdout=io.StringIO(),
        )


@pytest.mark.parametrize("spec", ["B1", "B1:", ":Fort"])
def test_configure_refuses_a_bad_branch_spec(spec: str) -> None:
    with pytest.raises(CommandError, match="CODE:NAME"):
        configure(spec)


def test_configure_refuses_an_unreadable_token_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="token file"):
        configure(token_file=str(tmp_path / "missing"))


# create_portal_user ------------------------------------------------------------------------------------


def create_user(username: str, role: str, *branches: str) -> None:
    call_command("create_portal_user", username, role=role, branch=list(branches), stdout=io.StringIO())


def test_create_user_takes_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, branch_a: Branch
) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    create_user("zara", Role.MAKER, "BRA")

    assert User.objects.get(username="zara").check_password(STRONG_PASSWORD)


def test_create_user_gives_the_role_and_branches(monkeypatch: pytest.MonkeyPatch, branch_a: Branch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    create_user("zara", Role.MAKER, "BRA")

    user = User.objects.get(username="zara")
    assert (user.role, list(user.branches.all())) == (Role.MAKER, [branch_a])


def test_create_user_again_updates_role_and_branches(
    monkeypatch: pytest.MonkeyPatch, branch_a: Branch, branch_b: Branch
) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)
    create_user("zara", Role.MAKER, "BRA")

    create_user("zara", Role.CHECKER, "BRB")

    user = User.objects.get(username="zara")
    assert (user.role, list(user.branches.all())) == (Role.CHECKER, [branch_b])


def test_create_user_reads_the_password_from_stdin_without_the_env(
    monkeypatch: pytest.MonkeyPatch, branch_a: Branch
) -> None:
    monkeypatch.delenv("PORTAL_USER_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{STRONG_PASSWORD}\n"))

    create_user("zara", Role.MAKER, "BRA")

    assert User.objects.get(username="zara").check_password(STRONG_PASSWORD)


def test_create_user_refuses_a_weak_password(monkeypatch: pytest.MonkeyPatch, branch_a: Branch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", "password")

    with pytest.raises(CommandError, match="password"):
        create_user("zara", Role.MAKER, "BRA")


def test_create_user_refused_password_creates_no_user(
    monkeypatch: pytest.MonkeyPatch, branch_a: Branch
) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", "short")

    with pytest.raises(CommandError):
        create_user("zara", Role.MAKER, "BRA")

    assert not User.objects.filter(username="zara").exists()


def test_create_user_refuses_an_unknown_branch(monkeypatch: pytest.MonkeyPatch, branch_a: Branch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    with pytest.raises(CommandError, match="NOPE"):
        create_user("zara", Role.MAKER, "BRA", "NOPE")


def test_create_user_refuses_a_maker_without_a_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    with pytest.raises(CommandError, match="branch"):
        create_user("zara", Role.MAKER)


def test_create_user_makes_an_admin_staff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    create_user("root", Role.ADMIN)

    assert User.objects.get(username="root").is_staff


def test_create_user_does_not_make_a_maker_staff(monkeypatch: pytest.MonkeyPatch, branch_a: Branch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", STRONG_PASSWORD)

    create_user("zara", Role.MAKER, "BRA")

    assert not User.objects.get(username="zara").is_staff


# The institution settings page -------------------------------------------------------------------------


def settings_form(institution: Institution, **overrides: Any) -> dict[str, Any]:
    fields = ("name", "fi_code", "region_code", "cersai_username", "api_version", "api_base_url")
    data = {name: getattr(institution, name) for name in fields}
    numbers = {
        "max_records_per_request": institution.max_records_per_request,
        "max_request_bytes": institution.max_request_bytes,
        "upload_due_days": institution.upload_due_days,
        "update_due_days": institution.update_due_days,
    }
    return data | numbers | {"new_token": ""} | overrides


def test_admin_saving_a_new_token_stores_it_with_who_replaced_it(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)

    client.post(
        reverse("uploads:institution_settings"), settings_form(institution, new_token="new-token-5555aaaa")
    )

    institution.refresh_from_db()
    assert (institution.api_token, institution.token_updated_by) == ("new-token-5555aaaa", erin)


def test_admin_saving_a_new_token_lifts_the_sending_pause(
    client: Client, erin: User, institution: Institution
) -> None:
    Institution.objects.filter(pk=institution.pk).update(
        sending_paused_at=timezone.now(), sending_paused_reason="KwikID refused the token"
    )
    otp_login(client, erin)

    client.post(
        reverse("uploads:institution_settings"), settings_form(institution, new_token="new-token-5555aaaa")
    )

    institution.refresh_from_db()
    assert (institution.sending_paused_at, institution.sending_paused_reason) == (None, "")


def test_admin_saving_without_a_token_keeps_the_token(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)

    client.post(reverse("uploads:institution_settings"), settings_form(institution, name="Renamed Bank"))

    institution.refresh_from_db()
    assert (institution.name, institution.api_token) == ("Renamed Bank", TOKEN)


def test_settings_page_never_shows_the_token(client: Client, erin: User, institution: Institution) -> None:
    otp_login(client, erin)

    response = client.get(reverse("uploads:institution_settings"))

    assert TOKEN not in response.content.decode()


def test_settings_page_shows_the_token_last_four_characters(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)

    response = client.get(reverse("uploads:institution_settings"))

    assert f"…{TOKEN[-4:]}" in response.content.decode()


def test_settings_form_with_errors_does_not_echo_the_new_token(
    client: Client, erin: User, institution: Institution
) -> None:
    otp_login(client, erin)
    data = settings_form(institution, max_records_per_request=0, new_token="typed-token-7777bbbb")

    response = client.post(reverse("uploads:institution_settings"), data)

    assert (response.status_code, "typed-token-7777bbbb" in response.content.decode()) == (200, False)


def test_maker_cannot_open_the_settings_page(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.get(reverse("uploads:institution_settings"))

    assert response.status_code == 403


def test_run_banner_labels_the_demo_logins() -> None:
    from accounts.management.commands.runlocal import Command as RunLocal

    out = io.StringIO()
    RunLocal(stdout=out)._banner(8000, "kyc-demo-2026!")
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "Username" in line)
    assert header.split() == ["Username", "Role", "Two-factor", "code"]
    admin = next(line for line in text.splitlines() if line.strip().startswith("admin "))
    maker = next(line for line in text.splitlines() if line.strip().startswith("maker "))
    assert "Administrator" in admin and "asked after the password" in admin
    assert "Maker (compliance staff)" in maker and "none needed" in maker
