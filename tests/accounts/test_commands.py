"""The make run commands: runlocal's banner."""

from __future__ import annotations

import io

from accounts.management.commands.runlocal import Command as RunLocal
from accounts.management.commands.runlocal import child_environment, standin_command


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


def test_run_registers_records_after_the_first_registry_check() -> None:
    env = child_environment({"PATH": "/bin"}, "local-token")
    command = standin_command("python")
    register_after = float(command[command.index("--register-after-seconds") + 1])

    assert env["KWIKID_STANDIN_TOKEN"] == "local-token"
    # The first check sees the record waiting; a later one (three times the first interval on) finds it.
    assert (
        0
        < float(env["REGISTRY_FIRST_CHECK_SECONDS"])
        < register_after
        <= 4 * float(env["REGISTRY_FIRST_CHECK_SECONDS"])
    )


def test_run_keeps_timings_already_set_in_the_environment() -> None:
    env = child_environment({"REGISTRY_FIRST_CHECK_SECONDS": "5", "UPLOAD_ASSEMBLE_EVERY_SECONDS": "3"}, "t")

    assert (env["REGISTRY_FIRST_CHECK_SECONDS"], env["UPLOAD_ASSEMBLE_EVERY_SECONDS"]) == ("5", "3")
