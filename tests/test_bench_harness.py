"""The benchmark's measuring helpers: what they count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import harness
from bench.harness import (
    cpu_seconds,
    machine_busy_seconds,
    postgres_cpu_seconds,
    stop_processes,
    task_seconds,
)

# A child that burns half a second of CPU, then waits to be killed.
_BURN = (
    "import time\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < 0.5:\n"
    "    pass\n"
    "time.sleep(60)\n"
)


def test_cpu_seconds_counts_the_children_a_prefork_worker_runs_its_tasks_in() -> None:
    # The parent only waits; its child does the work, as a prefork worker's pool processes do.
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_BURN!r}])"],
        start_new_session=True,  # its own process group: both are killed together below
    )
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(parent.pid) < 0.45 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu_seconds(parent.pid) >= 0.45
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_cpu_seconds_of_a_process_gone_is_zero() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0


def test_task_seconds_sums_the_runs_of_one_task_from_the_worker_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(
        "INFO celery.app.trace Task uploads.tasks.batch_assemble[a-1] succeeded in 0.25s: 8\n"
        "INFO celery.app.trace Task uploads.tasks.batch_send[b-2] succeeded in 0.125s: 'accepted'\n"
        "INFO celery.app.trace Task uploads.tasks.batch_assemble[c-3] succeeded in 1.5e-02s: 0\n"
        "ERROR celery.app.trace Task uploads.tasks.batch_assemble[d-4] raised unexpected: OperationalError\n"
    )
    assert task_seconds(log, "uploads.tasks.batch_assemble") == (2, pytest.approx(0.265))
    assert task_seconds(log, "uploads.tasks.batch_send") == (1, pytest.approx(0.125))
    assert task_seconds(log, "uploads.tasks.uploads_sweep") == (0, 0.0)


def test_machine_busy_seconds_counts_a_short_lived_process_after_it_is_gone() -> None:
    # What a per-process count misses: PostgreSQL's backends come and go with the worker's connections.
    before = machine_busy_seconds()
    subprocess.run([sys.executable, "-c", _BURN.replace("time.sleep(60)\n", "")], check=True)
    assert machine_busy_seconds() - before >= 0.45


def test_postgres_cpu_seconds_is_none_without_a_server_on_this_machine() -> None:
    # A pid with no process: the server runs elsewhere, and its CPU cannot be read here.
    assert postgres_cpu_seconds(2**22 + 1) is None


# A child that says it is ready, and on SIGTERM notes the time, takes a while to shut down (as a worker's
# warm shutdown does), notes the time again and exits.
_SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "def stop(*_):\n"
    "    with open(sys.argv[1], 'a') as f:\n"
    "        f.write(f'term {time.time()}\\n')\n"
    "    time.sleep(0.5)\n"
    "    with open(sys.argv[1], 'a') as f:\n"
    "        f.write(f'exit {time.time()}\\n')\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    time.sleep(1)\n"
)


def _started(code: str, *args: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def test_stop_processes_signals_every_process_before_waiting_for_any(tmp_path: Path) -> None:
    notes = [tmp_path / "a.txt", tmp_path / "b.txt"]
    children = [_started(_SLOW_TO_STOP, str(path)) for path in notes]
    stop_processes(children, timeout=30)
    assert [child.returncode for child in children] == [0, 0]  # each shut down warm
    times = [dict(line.split() for line in path.read_text().splitlines()) for path in notes]
    # The second was told to stop before the first had finished stopping: the shutdowns overlapped.
    assert float(times[1]["term"]) < float(times[0]["exit"])


def test_stop_processes_kills_what_will_not_stop() -> None:
    stubborn = _started(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    stop_processes([stubborn], timeout=0.5)
    assert stubborn.returncode == -signal.SIGKILL


def test_migrated_database_copies_the_kept_migrated_copy_while_the_fingerprint_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A migration runs once; the next run copies the kept copy; new migrations (a new fingerprint) run
    the migration again. The migration here is a stand-in that makes one table on the real server."""
    import psycopg

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.fail("needs DATABASE_URL (PostgreSQL): run it with `make test`")
    url = harness.with_path(os.environ["DATABASE_URL"], f"/ckyc_bench_cache_test_{os.getpid()}")
    migrations: list[str] = []

    def migrate(env: dict[str, str]) -> None:
        migrations.append(harness.database_name(url))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE migrated (n int)")

    fingerprint = "a" * 64
    monkeypatch.setattr(harness, "migrate", migrate)
    monkeypatch.setattr(harness, "migrations_fingerprint", lambda env: fingerprint)
    try:
        assert harness.migrated_database(url, {}) is False
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO migrated VALUES (1)")  # this run's rows: not in the kept copy
        assert harness.migrated_database(url, {}) is True
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM migrated").fetchone() == (0,)
        assert len(migrations) == 1
        fingerprint = "b" * 64
        assert harness.migrated_database(url, {}) is False
        assert len(migrations) == 2
        # Asked for: a fresh migration whatever the kept copy.
        monkeypatch.setenv("BENCH_FRESH_MIGRATION", "1")
        assert harness.migrated_database(url, {}) is False
        assert len(migrations) == 3
    finally:
        harness.drop_database(url)
        harness.drop_database(harness.with_path(url, f"/{harness.database_name(url)}_migrated"))


def test_the_migrations_fingerprint_follows_the_portals_code_and_settings_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration imports code (code lists, triggers, fields) whose output lands in the database: any
    change to a package of the portal migrates afresh; the benchmark's and the tests' own files do not."""
    for package in ("app", "app/migrations", "tests", "bench"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    migration = tmp_path / "app" / "migrations" / "0001_initial.py"
    migration.write_text("from app.codes import SEEDS\n")
    codes = tmp_path / "app" / "codes.py"
    codes.write_text("SEEDS = ['a']\n")
    monkeypatch.setattr(harness, "ROOT", tmp_path)
    env = {"DJANGO_SECRET_KEY": "k"}
    first = harness.migrations_fingerprint(env)
    # Not the schema's: the environment beyond the portal's settings, the benchmark, the tests.
    assert harness.migrations_fingerprint({**env, "PATH": "/elsewhere"}) == first
    (tmp_path / "tests" / "test_x.py").write_text("def test(): pass\n")
    (tmp_path / "bench" / "run.py").write_text("pass\n")
    assert harness.migrations_fingerprint(env) == first
    # The schema's: a setting a migration may read, a migration, the code a migration imports.
    assert harness.migrations_fingerprint({**env, "PII_HASH_KEY": "other"}) != first
    migration.write_text("from app.codes import SEEDS  # changed\n")
    second = harness.migrations_fingerprint(env)
    assert second != first
    codes.write_text("SEEDS = ['a', 'b']\n")
    assert harness.migrations_fingerprint(env) != second


def test_a_shared_stand_in_keeps_the_latency_it_was_given_across_resets() -> None:
    """One stand-in serves the run's rows, each with its own latency: a reset between runs (counters and
    faults cleared) must not drop the row's latency back to the one the stand-in started with."""
    standin = object.__new__(harness.StandInProcess)  # its calls recorded, no process
    standin.latency_ms = standin._started_latency_ms = 0
    calls: list[tuple[str, bytes | None]] = []
    standin._call = lambda path, body=None: calls.append((path, body))  # type: ignore[method-assign]
    standin.reset()
    assert calls == [("/_standin/reset", b"{}")]  # at its own latency: nothing to put back
    calls.clear()
    standin.set_latency(100)
    standin.reset()
    assert calls == [
        ("/_standin/faults", b'{"latency_ms": 100}'),
        ("/_standin/reset", b"{}"),
        ("/_standin/faults", b'{"latency_ms": 100}'),
    ]


def test_a_row_taking_over_the_running_stand_in_sets_its_latency_once() -> None:
    """``Bench.standin_for`` on the run's live stand-in: one reset, then the row's latency put back once
    (not set, then cleared by the reset and set again)."""
    from types import SimpleNamespace

    from bench.upload_scenarios import Bench

    standin = object.__new__(harness.StandInProcess)
    standin.latency_ms = standin._started_latency_ms = 0
    standin.url = "http://127.0.0.1:9"
    standin.process = SimpleNamespace(poll=lambda: None)  # type: ignore[assignment]
    calls: list[tuple[str, bytes | None]] = []
    standin._call = lambda path, body=None: calls.append((path, body))  # type: ignore[method-assign]
    bench = object.__new__(Bench)
    bench.standins = {True: standin}
    bench.institution = SimpleNamespace(save=lambda **kwargs: None)  # type: ignore[assignment]
    assert bench.standin_for(200) is standin
    assert calls == [("/_standin/reset", b"{}"), ("/_standin/faults", b'{"latency_ms": 200}')]
    assert bench.institution.api_base_url == standin.url and standin.latency_ms == 200
