"""The production image and compose file, read statically (no Docker needed): the image holds every package
the settings load, and compose passes only variables that .env.example documents."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PORTAL_SERVICES = ("web", "worker", "beat")


# --- What the image copies ---------------------------------------------------------------------------


def _dockerfile_copy_sources() -> list[str]:
    """Sources of the build-context COPY instructions (not ``COPY --from=`` of another stage)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue
        sources += [source.strip("/") or "." for source in args[:-1]]
    return sources


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: Go's filepath.Match plus ``**`` for any directories."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(out + "$")


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    path = ROOT / ".dockerignore"
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if not path.exists():
        return rules
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((include, _pattern_regex(pattern)))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker excludes a path when the last rule matching it, or one of its parent folders, excludes it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for include, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not include
    return ignored


def _copied(relative: str) -> bool:
    sources = _dockerfile_copy_sources()
    in_a_source = any(
        source == "." or relative == source or relative.startswith(source + "/") for source in sources
    )
    return in_a_source and not _ignored(relative, _dockerignore())


def _project_packages() -> set[str]:
    """Top-level project packages the running portal imports: installed apps, the settings' own modules,
    and every package pyproject.toml installs."""
    names = {entry.split(".")[0] for entry in settings.INSTALLED_APPS}
    names |= {settings.ROOT_URLCONF.split(".")[0], settings.WSGI_APPLICATION.split(".")[0]}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names |= {name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    return {name for name in names if (ROOT / name / "__init__.py").exists()}


def _files_under(folder: str) -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def test_project_packages_are_found() -> None:
    assert {
        "ckycportal",
        "records",
        "registry",
        "api",
        "bulkdata",
        "codelists",
        "kwikid",
    } <= _project_packages()


@pytest.mark.parametrize("package", sorted(_project_packages()))
def test_image_copies_every_project_package(package: str) -> None:
    missing = [path for path in _files_under(package) if not _copied(path)]

    assert not missing, f"the image leaves out {missing[:5]}"


@pytest.mark.parametrize("folder", ["templates", "static"])
def test_image_copies_templates_and_static_files(folder: str) -> None:
    files = _files_under(folder)
    missing = [path for path in files if not _copied(path)]

    assert files
    assert not missing, f"the image leaves out {missing[:5]}"


@pytest.mark.parametrize("name", ["manage.py", "pyproject.toml"])
def test_image_copies_the_entry_points(name: str) -> None:
    assert _copied(name)


@pytest.mark.parametrize("name", [".env", ".git/HEAD", ".venv/bin/python", ".local/portal.sqlite3"])
def test_image_leaves_out_secrets_and_local_state(name: str) -> None:
    assert not _copied(name)


def test_dockerignore_reading_follows_docker() -> None:
    rules = [
        (False, _pattern_regex("**/*.pyc")),
        (False, _pattern_regex("tests")),
        (True, _pattern_regex("a")),
    ]

    assert _ignored("records/x.pyc", rules)
    assert _ignored("x.pyc", rules)
    assert _ignored("tests/test_x.py", rules)
    assert not _ignored("records/tests.py", rules)


# --- docker-compose.yml ------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _env_example() -> dict[str, list[str]]:
    """Each variable of .env.example with the comment block it sits under (empty when none)."""
    documented: dict[str, list[str]] = {}
    comment: list[str] = []
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("# ---"):
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped)
        else:
            name = stripped.split("=", 1)[0].strip()
            documented[name] = list(comment)
            comment = [*comment, stripped]  # the next variable of the same block shares its comment
    return documented


def _compose_variables() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    passed: set[str] = set()
    for name in PORTAL_SERVICES:
        environment = _compose()["services"][name].get("environment") or {}
        passed |= (
            set(environment) if isinstance(environment, dict) else {e.split("=")[0] for e in environment}
        )
    return interpolated | passed


def _settings_variables() -> set[str]:
    names: set[str] = set()
    lookup = re.compile(
        r"(?:os\.environ\.get|os\.getenv|os\.environ\[|env_bool|env_int|env_list)\(?\s*[\"']([A-Z0-9_]+)"
    )
    for module in ("settings.py", "gunicorn_conf.py"):
        names |= set(lookup.findall((ROOT / "ckycportal" / module).read_text(encoding="utf-8")))
    return names


def test_compose_file_parses_with_every_service() -> None:
    services = _compose()["services"]

    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    assert all(services[name].get("image") or services[name].get("build") for name in services)


def test_settings_variables_are_found() -> None:
    assert {"DJANGO_SECRET_KEY", "REDIS_URL", "API_MAX_BODY_BYTES"} <= _settings_variables()


@pytest.mark.parametrize("name", sorted(_compose_variables() | _settings_variables()))
def test_every_variable_is_documented_in_env_example(name: str) -> None:
    documented = _env_example()

    assert name in documented, f"{name} is missing from .env.example"
    assert documented[name], f"{name} has no comment in .env.example"


def _command(service: str) -> list[str]:
    command = _compose()["services"][service]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_worker_and_beat_run_the_portals_celery_app() -> None:
    assert _command("worker")[:4] == ["celery", "-A", "ckycportal", "worker"]
    assert _command("beat")[:4] == ["celery", "-A", "ckycportal", "beat"]


def test_worker_consumes_the_queue_the_tasks_go_to() -> None:
    command = _command("worker")
    queues = next((command[i + 1] for i, word in enumerate(command) if word in {"-Q", "--queues"}), None)

    assert queues is None or settings.CELERY_TASK_DEFAULT_QUEUE in queues.split(",")
    assert "CELERY_TASK_ROUTES" not in dir(settings)


def test_worker_knows_every_task_beat_schedules() -> None:
    from ckycportal.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled - set(app.tasks) == set()


def test_beat_keeps_its_schedule_on_its_volume() -> None:
    command = _command("beat")
    schedule = command[command.index("--schedule") + 1]
    volumes = [volume.split(":")[1] for volume in _compose()["services"]["beat"].get("volumes", [])]

    assert any(schedule.startswith(mount.rstrip("/") + "/") for mount in volumes)


def test_web_healthcheck_names_an_allowed_host() -> None:
    # Django answers 400 to a Host outside ALLOWED_HOSTS: the check must not ask as 127.0.0.1.
    test = " ".join(_compose()["services"]["web"]["healthcheck"]["test"])

    assert "DJANGO_ALLOWED_HOSTS" in test
