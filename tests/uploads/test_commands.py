"""The configure_institution command: the institution's CERSAI codes, branches and KwikID token."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from institutions.models import Branch, Institution

pytestmark = pytest.mark.django_db


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
