"""The create_portal_user command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from institutions.models import Branch, Role, User

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "plum-orbit-ladder-9471"


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
