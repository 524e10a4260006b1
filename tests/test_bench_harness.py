"""The benchmark's measuring helpers: what they count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import cpu_seconds, machine_busy_seconds, postgres_cpu_seconds, task_seconds

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
