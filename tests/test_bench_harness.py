"""The benchmark's measuring helpers: what they count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.harness import cpu_seconds

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
