"""Run a Celery worker with every SQL statement, database connection and task counted, from outside the
worker's code (`make bench BENCH_ARGS="--profile queries"`):

    python bench/count_queries.py OUT.json -m celery -A ckycportal worker ...

Django's ``connection_created`` signal adds an execute wrapper to each new connection; each statement is
counted under its shape (literals and parameter lists folded) with the time it took, as is each task run.
The counts are written to OUT.json when the worker exits (a warm shutdown). The portal's code is not
changed: this is the same worker, with a counter around its database calls.
"""

from __future__ import annotations

import atexit
import json
import re
import runpy
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

_NUMBERS = re.compile(r"\b\d+\b")
_LISTS = re.compile(r"\((?:\s*%s\s*,)+\s*%s\s*\)")
_SPACES = re.compile(r"\s+")

statements: Counter[str] = Counter()
seconds: defaultdict[str, float] = defaultdict(float)
tasks: Counter[str] = Counter()
connections = 0


def shape(sql: str) -> str:
    """A statement with its literals and IN-lists folded, so the same query counts as one."""
    text = _SPACES.sub(" ", sql.strip())
    text = _LISTS.sub("(%s, ...)", text)
    return _NUMBERS.sub("N", text)[:240]


def _counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        key = shape(sql)
        statements[key] += 1
        seconds[key] += time.perf_counter() - started


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    global connections
    connections += 1
    connection.execute_wrappers.append(_counter)


def _on_task(sender: Any = None, **kwargs: Any) -> None:
    tasks[getattr(sender, "name", str(sender))] += 1


def _write(path: Path) -> None:
    path.write_text(
        json.dumps(
            {
                "connections": connections,
                "tasks": dict(tasks),
                "statements": [
                    {"sql": sql, "count": count, "seconds": round(seconds[sql], 4)}
                    for sql, count in statements.most_common()
                ],
            },
            indent=1,
        ),
        encoding="utf-8",
    )


def main() -> None:
    out = Path(sys.argv[1])
    rest = sys.argv[2:]
    if rest[:1] != ["-m"] or len(rest) < 2:
        raise SystemExit(__doc__)
    from celery.signals import task_postrun
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection, weak=False)
    task_postrun.connect(_on_task, weak=False)
    atexit.register(_write, out)
    sys.argv = [rest[1], *rest[2:]]
    runpy.run_module(rest[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
