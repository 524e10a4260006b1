"""The portal's import of one file, in a process of its own: prints one JSON line with its figures.

    python bench/import_child.py FILE BRANCH_CODE USERNAME [--check-only]

Runs ``bulkdata.engine.records_import`` exactly as ``manage.py import_records`` does (all or nothing,
validation, encryption, duplicate checks, records, name tokens and audit events) and reports the seconds
it took, the rows and this process's peak resident memory (VmHWM, which includes Django itself), and the
largest peak of the worker processes that prepared its rows (forked from it, so sharing its pages).
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/import_child.py`
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckycportal.settings")

from bench.harness import Stopwatch, memory_kb


def peak_kb() -> int:
    """This process's peak resident set (VmHWM), in kB."""
    return memory_kb()["VmHWM"]


def main() -> int:
    import django

    django.setup()
    from bulkdata.engine import records_import
    from institutions.models import User

    path, code, username = sys.argv[1], sys.argv[2], sys.argv[3]
    actor = User.objects.get(username=username)
    branch = actor.branches.select_related("institution").get(code=code)
    started_kb = peak_kb()
    with Stopwatch() as watch:
        outcome = records_import(
            actor=actor,
            branch=branch,
            opener=lambda: Path(path).open("rb"),  # noqa: SIM115 - the importer closes what it opens
            filename=path,
            save="--check-only" not in sys.argv,
        )
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
            }
        )
    )
    return 0 if outcome.saved or "--check-only" in sys.argv else 1


if __name__ == "__main__":
    raise SystemExit(main())
