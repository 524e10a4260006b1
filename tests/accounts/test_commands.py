"""The make run commands: runlocal's banner."""

from __future__ import annotations

import io

from accounts.management.commands.runlocal import Command as RunLocal


def test_run_banner_labels_the_demo_logins() -> None:
    out = io.StringIO()
    RunLocal(stdout=out)._banner(8000, "kyc-demo-2026!")
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "Username" in line)
    assert header.split() == ["Username", "Role", "Two-factor", "code"]
    admin = next(line for line in text.splitlines() if line.strip().startswith("admin "))
    maker = next(line for line in text.splitlines() if line.strip().startswith("maker "))
    assert "Administrator" in admin and "asked after the password" in admin
    assert "Maker (compliance staff)" in maker and "none needed" in maker
