"""The portal's import of one file, in a process of its own: prints one JSON line with its figures.

    python bench/import_child.py FILE BRANCH_CODE USERNAME [--check-only]

Runs ``bulkdata.engine.records_import`` exactly as ``manage.py import_records`` does (all or nothing,
validation, encryption, duplicate checks, records, name tokens and audit events) and reports the seconds
it took, the rows and this process's peak resident memory (VmHWM, which includes Django itself), and the
largest peak of the worker processes that prepared its rows (forked from it, so sharing its pages). Also the
CPU the import used (this process and its row workers, reaped when the import ends), PostgreSQL's (when the
server runs on this machine) and the whole machine's, over the import alone: Django's start is not in it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/import_child.py`
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckycportal.settings")

from bench.harness import Stopwatch, machine_busy_seconds, memory_kb, postgres_cpu_seconds


def peak_kb() -> int:
    """This process's peak resident set (VmHWM), in kB."""
    return memory_kb()["VmHWM"]


def own_cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the import's row workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> int:
    import django

    django.setup()
    from django.db import connection

    from bulkdata.engine import records_import
    from institutions.models import User

    path, code, username = sys.argv[1], sys.argv[2], sys.argv[3]
    actor = User.objects.get(username=username)
    branch = actor.branches.select_related("institution").get(code=code)
    started_kb = peak_kb()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    cpu_before, postgres_before = own_cpu_seconds(), postgres_cpu_seconds(backend_pid)
    busy_before = machine_busy_seconds()
    with Stopwatch() as watch:
        outcome = records_import(
            actor=actor,
            branch=branch,
            opener=lambda: Path(path).open("rb"),  # noqa: SIM115 - the importer closes what it opens
            filename=path,
            save="--check-only" not in sys.argv,
        )
    cpu, postgres_after = own_cpu_seconds() - cpu_before, postgres_cpu_seconds(backend_pid)
    busy = machine_busy_seconds() - busy_before
    print(
        json.dumps(
            {
                "seconds": watch.seconds,
                "rows": outcome.rows,
                "created": outcome.created,
                "invalid": outcome.invalid,
                "peak_kb": peak_kb(),
                "peak_kb_before": started_kb,
                # Linux gives ru_maxrss in kB: the largest of the waited-for children (the workers).
                "workers_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "cpu_import": cpu,
                "cpu_postgres": (
                    postgres_after - postgres_before
                    if postgres_before is not None and postgres_after is not None
                    else None
                ),
                "cpu_machine": busy,
            }
        )
    )
    return 0 if outcome.saved or "--check-only" in sys.argv else 1


if __name__ == "__main__":
    raise SystemExit(main())
