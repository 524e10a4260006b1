"""ckycportal.settings in a fresh process: no start without its secrets; production settings pass --deploy."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


SECRET_VARIABLES = ("FIELD_ENCRYPTION_KEYS", "PII_HASH_KEY")


def clean_env(**extra: str) -> dict[str, str]:
    """The test run's environment (PATH, DATABASE_URL, ...) without any DJANGO_* variable or key, plus
    ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DJANGO_") and name not in SECRET_VARIABLES
    }
    return env | extra


def production_env(**overrides: str) -> dict[str, str]:
    """What .env.example asks production to set, with fresh random values."""
    env = clean_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),  # 64 characters
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        FIELD_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        PII_HASH_KEY=secrets.token_urlsafe(48),
    )
    return {name: value for name, value in (env | overrides).items() if value}


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
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_production_without_a_pii_key_does_not_start_and_names_it(variable: str) -> None:
    result = manage("check", env=production_env(**{variable: ""}))

    assert (result.returncode != 0, variable in result.stderr) == (True, True), result.stderr


def test_production_settings_send_hsts_and_secure_cookies() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS >= 31536000, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS, s.SECURE_REFERRER_POLICY)"
    )

    result = manage("shell", "--no-imports", "-c", code, env=production_env())

    assert result.stdout.strip() == "True True True True DENY same-origin", result.stderr


def test_gunicorn_access_log_leaves_out_query_strings() -> None:
    from ckycportal import gunicorn_conf

    assert "%(U)s" in gunicorn_conf.access_log_format
    assert "%(r)s" not in gunicorn_conf.access_log_format
    assert "%(q)s" not in gunicorn_conf.access_log_format


def test_passwords_are_hashed_with_argon2() -> None:
    # Read from the settings module itself: the tests swap in a fast hasher (tests/conftest.py).
    from ckycportal import settings as configured

    assert configured.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
