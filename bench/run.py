"""Upload benchmark (`make bench`): the portal's Celery upload path against the KwikID stand-in.

1. N approved records (default 100,000) uploaded by ONE real worker process (``--pool=solo``), timed from
   the assemble task being sent to the last batch accepted; in the same run, on the same records and batch
   size, a plain script (bench/plain_upload.py) POSTs the same bodies with requests on one Session (the
   bodies are built beforehand, outside its timing). Goal: portal <= 1.5x the plain script.
2. 4 workers vs 1 worker against a stand-in answering after 200 ms (default 20,000 records). Goal: >= 3.5x.
3. The worker's peak RSS (VmHWM) while uploading ``--records-for-memory`` records. Goal: < 250 MB for
   1,000,000. The default is 300,000, to keep the whole run short on 2 cores; the table extrapolates the
   peak to 1,000,000; ``--records-for-memory 1000000`` measures it; ``--quick`` is a smoke run.
4. N records accepted by KwikID (``--search-records``, default 100,000) checked at the registry once each by
   ONE worker, against a plain loop of the same CKYC searches (bench/registry_scenario.py). Goal: at least
   0.8 times the loop's throughput; the worker under 250 MB.
0. (Run first; ``--only floor``) the SQL of that upload path alone, in one PL/pgSQL procedure
   (FLOOR_PROCEDURE), on the same records: what PostgreSQL needs whatever the Python side does.

Records are created fast (bench/seed.py: Fernet-encrypted in a tight loop, COPY in chunks); creation is
timed and printed. Where PostgreSQL runs with ``autovacuum = off`` (these test machines), a thread runs
ANALYZE/VACUUM where autovacuum would, so plans follow the data as they would in production.

Uses PostgreSQL and Redis from DATABASE_URL / REDIS_URL (the Makefile's TEST_ENV) but its own database,
``ckycportal_bench`` (dropped, created and migrated here), Redis database 7 and its own queue name; set
BENCH_DATABASE_URL / BENCH_REDIS_URL to choose others. The stand-in runs in its own process
(``python -m kwikid_standin``). Results: a table on stdout and in bench/results/latest.txt.

This file is the command line; the scenarios are in bench/upload_scenarios.py, the table in
bench/upload_report.py, what every benchmark shares in bench/harness.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/run.py`: the project root

from bench import harness
from bench.registry_scenario import scenario_registry
from bench.upload_report import report
from bench.upload_scenarios import (
    QUEUE,
    Bench,
    scenario_floor,
    scenario_memory,
    scenario_ratio,
    scenario_scaling,
)

DEFAULT_DB_NAME = "ckycportal_bench"
DEFAULT_REDIS_DB = "7"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=100_000, help="records for the ratio (default 100,000)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="max_records_per_request (default 500)")
    parser.add_argument("--parallel-records", type=int, default=20_000, help="records for 1 vs N workers")
    parser.add_argument("--workers", type=int, default=4, help="workers compared with one (default 4)")
    parser.add_argument("--latency-ms", type=float, default=200, help="stand-in latency for 1 vs N workers")
    parser.add_argument(
        "--records-for-memory",
        type=int,
        default=300_000,
        help="records for the peak-memory run (default 300,000 to finish in time; goal is for 1,000,000)",
    )
    parser.add_argument(
        "--search-records", type=int, default=100_000, help="accepted records checked at the registry"
    )
    parser.add_argument(
        "--search-latency-records", type=int, default=1000, help="records checked with a slow stand-in"
    )
    parser.add_argument("--search-latency-ms", type=float, default=100, help="the slow stand-in's latency")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (about 1.2 minutes on 2 cores)"
    )
    parser.add_argument(
        "--only",
        choices=("floor", "ratio", "scaling", "memory", "registry"),
        action="append",
        help="run only these (repeatable); floor: the upload path's SQL alone",
    )
    parser.add_argument(
        "--profile",
        choices=("py-spy", "cprofile"),
        help="profile the ratio run's worker (py-spy: $PY_SPY or on PATH); output in bench/results",
    )
    args = parser.parse_args()
    if args.quick:
        args.records, args.parallel_records, args.search_records = 5_000, 4_000, 5_000
        args.search_latency_records = 200
        args.records_for_memory = min(args.records_for_memory, 20_000)
    return args


def main() -> int:
    args = parse_args()
    env = harness.bench_environment(
        harness.bench_database_url("BENCH_DATABASE_URL", DEFAULT_DB_NAME, "bench"),
        harness.bench_redis_url("BENCH_REDIS_URL", DEFAULT_REDIS_DB, "bench"),
        CELERY_QUEUE=QUEUE,
    )
    started = time.perf_counter()
    harness.LOGS.mkdir(parents=True, exist_ok=True)
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    harness.say(f"Database {harness.database_name(env['DATABASE_URL'])}: recreating and migrating")
    harness.recreate_database(env["DATABASE_URL"])
    harness.migrate(env)

    import django

    django.setup()
    bench = Bench(env=env, batch_size=args.batch_size)
    bench.setup()
    only = set(args.only or ("floor", "ratio", "scaling", "memory", "registry"))
    if "floor" in only and args.records:
        scenario_floor(bench, args)
    if "ratio" in only and args.records:
        scenario_ratio(bench, args)
    if "scaling" in only and args.parallel_records:
        scenario_scaling(bench, args)
    if "memory" in only and args.records_for_memory:
        scenario_memory(bench, args)
    if "registry" in only and args.search_records:
        scenario_registry(bench, args)
    text = report(bench, args, time.perf_counter() - started)
    print("\n" + text, end="")
    harness.write_result("latest.txt", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
