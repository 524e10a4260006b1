"""`make run`: the whole portal on one machine with nothing installed but Python.

SQLite, a Celery worker and beat over kombu's filesystem transport (no broker server), the project's own
KwikID stand-in, demo users, and Django's development server. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.demo import DEMO_TOTP_SECRET, DEMO_TOTP_USERS, DEMO_USERS
from institutions.models import Role

STANDIN_PORT = 8765
# The stand-in registers an accepted record this long after acceptance; the portal's first registry check
# comes before that (so a record is seen waiting) and the next, 3 times later, finds it: `make run` shows
# registrations within about two minutes of an upload.
STANDIN_REGISTER_AFTER_SECONDS = 45
REGISTRY_FIRST_CHECK_SECONDS = 30


def child_environment(environ: dict[str, str], standin_token: str) -> dict[str, str]:
    """The environment of the worker, beat, web and stand-in: short local timings unless already set."""
    return {
        **environ,
        "KWIKID_STANDIN_TOKEN": standin_token,
        "UPLOAD_ASSEMBLE_EVERY_SECONDS": environ.get("UPLOAD_ASSEMBLE_EVERY_SECONDS", "15"),
        "REGISTRY_FIRST_CHECK_SECONDS": environ.get(
            "REGISTRY_FIRST_CHECK_SECONDS", str(REGISTRY_FIRST_CHECK_SECONDS)
        ),
    }


def standin_command(python: str) -> list[str]:
    """How `make run` starts the KwikID stand-in."""
    return [
        python,
        "-m",
        "kwikid_standin",
        "--host",
        "127.0.0.1",
        "--port",
        str(STANDIN_PORT),
        "--register-after-seconds",
        str(STANDIN_REGISTER_AFTER_SECONDS),
    ]


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the portal locally: web, Celery worker and beat, KwikID stand-in, demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        for port in (options["port"], STANDIN_PORT):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise CommandError(
                        f"Port {port} is in use: is the portal already running? Stop it first."
                    )
        # Ctrl-C, kill (TERM) and a closed terminal (HUP) all stop every child; none is left running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop)
        local: Path = settings.LOCAL_DIR
        for sub in ("broker/queue", "broker/processed"):
            (local / sub).mkdir(parents=True, exist_ok=True)
        token_file = local / "standin-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(24), encoding="utf-8")
            token_file.chmod(0o600)
        password = os.environ.get("PORTAL_DEMO_PASSWORD", "kyc-demo-2026!")

        call_command("migrate", interactive=False, verbosity=0)
        call_command(
            "setup_demo",
            api_base_url=f"http://127.0.0.1:{STANDIN_PORT}",
            token_file=str(token_file),
            password=password,
            stdout=open(os.devnull, "w"),  # noqa: SIM115 - the summary below says what matters
        )
        # A portal without records gets the living demo once, before the worker starts (the seed sends
        # through its own stand-in on STANDIN_PORT, still free here); later starts keep what is there.
        try:
            call_command("seed_demo", if_empty=True, stdout=self.stdout)
        except CommandError as exc:
            self.stderr.write(f"No demo records: {exc}")

        env = child_environment(dict(os.environ), token_file.read_text(encoding="utf-8").strip())
        py = sys.executable
        commands = {
            "stand-in": standin_command(py),
            "worker": [py, "-m", "celery", "-A", "ckycportal", "worker", "--pool=solo", "--loglevel=INFO"],
            "beat": [
                py,
                "-m",
                "celery",
                "-A",
                "ckycportal",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(local / "celerybeat-schedule"),
            ],
            "web": [py, "manage.py", "runserver", f"127.0.0.1:{options['port']}", "--noreload"],
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, command in commands.items():
                # Own sessions: Ctrl-C reaches this process alone, which then stops them in order.
                children[name] = subprocess.Popen(  # noqa: S603
                    command, env=env, cwd=settings.BASE_DIR, start_new_session=True
                )
            time.sleep(2)
            self._banner(options["port"], password)
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
            stopped = [name for name, child in children.items() if child.poll() is not None]
            self.stderr.write(f"Stopped because {', '.join(stopped)} exited.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()

    def _banner(self, port: int, password: str) -> None:
        lines = [
            "",
            "CKYC Portal is running (Ctrl-C stops everything):",
            f"  Portal:  http://127.0.0.1:{port}/   (log in at http://127.0.0.1:{port}/accounts/login/)",
            f"  KwikID stand-in: http://127.0.0.1:{STANDIN_PORT}/ckycportalapi/ckyc-upload/ (search: "
            f"/api/ckyc/search; it registers a record {STANDIN_REGISTER_AFTER_SECONDS} s after acceptance)",
            f"  Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; broker: "
            f"{settings.CELERY_BROKER_URL.split('://', 1)[0]}",
            "  Demo logins (password for all: " + password + "):",
            f"    {'Username':<10}{'Role':<28}Two-factor code",
        ]
        labels = dict(Role.choices)
        lines += [
            f"    {username:<10}{labels[role]:<28}"
            + ("asked after the password" if username in DEMO_TOTP_USERS else "none needed")
            for username, role, _ in DEMO_USERS
        ]
        secret = " ".join(DEMO_TOTP_SECRET[i : i + 4] for i in range(0, len(DEMO_TOTP_SECRET), 4))
        lines += [
            f"  Two-factor code for {' and '.join(DEMO_TOTP_USERS)} after the password: add the demo key",
            f"    {secret}",
            "    to an authenticator app (time-based), or run `make totp WHO=checker` in another terminal.",
        ]
        self.stdout.write("\n".join(lines) + "\n")
