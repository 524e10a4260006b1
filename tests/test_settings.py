"""ckycportal.settings in a fresh process: no start without a secret; production settings pass --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The test run's environment (PATH, DATABASE_URL, ...) without any DJANGO_* variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")}
    return env | extra


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_without_a_secret_key_fails() -> None:
    result = manage("check", env=clean_env())

    assert result.returncode != 0


def test_check_without_a_secret_key_names_the_variable() -> None:
    result = manage("check", env=clean_env())

    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_checks() -> None:
    env = clean_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),  # 64 characters
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
    )

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
