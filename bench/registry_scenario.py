"""The registry check's benchmark (`make bench`, row [4]): N records accepted by KwikID, each searched once
by the portal's checking pass in ONE real worker process, against bench/plain_search.py making the same
searches in a plain loop, both against the same stand-in (which registers every PAN it is asked about).
Goal: the portal's throughput at least 0.8 times the loop's; the worker's peak RSS under 250 MB.

The portal's time runs from the first pass's task being sent to the last record registered; it includes
what the loop never does: each record's place in the schedule, the claim, the search's audit row, the
status move with its history event and the encrypted KIN.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    WorkerProcess,
    cpu_seconds,
    machine_busy_seconds,
    postgres_cpu_seconds,
    run_json,
    say,
)
from bench.upload_scenarios import QUEUE, TOKEN, Bench


def _accepted(bench: Bench, n: int) -> list[str]:
    """``n`` records accepted by KwikID an hour ago (registry tables emptied); returns their PANs."""
    from django.db import connection

    from records.models import KycRecord

    seconds = bench.fresh_records(n, "R4-")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE registry_registrycheck, registry_searchattempt RESTART IDENTITY")
        cursor.execute(
            "UPDATE records_kycrecord SET status = 'uploaded', uploaded_at = now() - interval '1 hour'"
        )
    say(f"    created {n:,} accepted records in {seconds:.1f} s")
    return list(KycRecord.objects.order_by("pk").values_list("pan", flat=True).iterator(chunk_size=5000))


def _waiting() -> int:
    """How many records still wait for the registry (a count: for the progress lines only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM records_kycrecord WHERE status = 'uploaded'")
        return int(cursor.fetchone()[0])


def _run_portal(bench: Bench, n: int) -> dict[str, Any]:
    """One worker runs passes (as beat would, back to back) until every record is registered."""
    import redis
    from django.db import connection

    from registry.tasks import registrations_check

    broker = redis.Redis.from_url(bench.env["REDIS_URL"])
    for key in broker.scan_iter(match=QUEUE + "*"):
        broker.delete(key)
    env = {**bench.env, "REGISTRY_FIRST_CHECK_SECONDS": "0"}
    worker = WorkerProcess(env, "bench-registry")
    try:
        worker.wait_ready()
        idle_kb = worker.memory_kb()["VmRSS"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        cpu_before, postgres_before = cpu_seconds(worker.pid), postgres_cpu_seconds(backend_pid)
        standin_before, busy_before = cpu_seconds(bench.standin.process.pid), machine_busy_seconds()
        peak_kb, passes = 0, 0
        started = time.time()
        timeout = 120 + n / 50
        next_report = time.monotonic() + 30
        while True:
            # Whether any record still waits: the first entry of the waiting-records index, not a count of
            # them (at 100,000 records, counting every 50 ms cost PostgreSQL more than the pass's own work).
            with connection.cursor() as cursor:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM records_kycrecord WHERE status = 'uploaded')")
                (any_waiting,) = cursor.fetchone()
            if not any_waiting:
                finished = time.time()
                break
            if not broker.llen(QUEUE):  # the worker took the last pass sent: queue the next
                registrations_check.apply_async(queue=QUEUE)
                passes += 1
            if time.time() - started > timeout:
                raise RuntimeError(
                    f"timed out after {timeout:.0f} s with {_waiting():,} of {n:,} not registered"
                )
            if time.monotonic() > next_report:
                say(f"    ... {n - _waiting():,} of {n:,} registered after {time.time() - started:.0f} s")
                next_report += 30
            peak_kb = max(peak_kb, worker.memory_kb()["VmHWM"])
            time.sleep(0.05)
        peak_kb = max(peak_kb, worker.memory_kb()["VmHWM"])
        cpu = cpu_seconds(worker.pid) - cpu_before
        busy = machine_busy_seconds() - busy_before
        standin_cpu = cpu_seconds(bench.standin.process.pid) - standin_before
        postgres_after = postgres_cpu_seconds(backend_pid)
    finally:
        worker.stop()
    seconds = finished - started
    return {
        "seconds": seconds,
        "rate": n / seconds,
        "passes": passes,
        "peak_mb": peak_kb / 1024,
        "idle_mb": idle_kb / 1024,
        "cpu_worker": cpu,
        "cpu_standin": standin_cpu,
        "cpu_machine": busy,
        **(
            {"cpu_postgres": postgres_after - postgres_before}
            if postgres_before is not None and postgres_after is not None
            else {}
        ),
    }


def _compare(bench: Bench, n: int, latency_ms: float) -> dict[str, Any]:
    """The plain loop, then the portal, on ``n`` fresh accepted records, against a stand-in that answers
    each search after ``latency_ms``."""
    import sys

    from kwikid.search import SEARCH_PATH

    pans = _accepted(bench, n)
    standin = bench.standin_for(0)
    faults = {"register_any": True, "search_delay": latency_ms / 1000}
    standin._call("/_standin/faults", json.dumps(faults).encode())
    try:
        with tempfile.TemporaryDirectory(prefix="ckyc-bench-") as tmp:
            pans_file = Path(tmp) / "pans.txt"
            pans_file.write_text("\n".join(pans) + "\n", encoding="ascii")
            command = [sys.executable, str(ROOT / "bench" / "plain_search.py"), str(pans_file)]
            command.append(f"{standin.url}/{SEARCH_PATH}")
            busy_before = machine_busy_seconds()
            plain = run_json(command, {**bench.env, "BENCH_KWIKID_TOKEN": TOKEN})
            plain_busy = machine_busy_seconds() - busy_before  # the loop's start-up included: an upper bound
            if plain["found"] != n:
                raise RuntimeError(f"plain loop: the stand-in found {plain['found']} of {n} PANs")
            say(f"    plain:  {plain['seconds']:.2f} s  ({n / plain['seconds']:,.0f} searches/s)")
            searches_before = standin.stats()["searches"]
            portal = _run_portal(bench, n)
            searched = standin.stats()["searches"] - searches_before
            if searched != n:
                raise RuntimeError(f"the portal made {searched} searches for {n} records")
            say(
                f"    portal: {portal['seconds']:.2f} s  ({portal['rate']:,.0f} searches/s, "
                f"{portal['passes']} passes); peak RSS {portal['peak_mb']:.0f} MB"
            )
    finally:
        standin.reset()  # its registry faults off for the rows after
    return {
        **portal,
        "records": n,
        "plain_s": plain["seconds"],
        "plain_cpu_machine": plain_busy,
        "latency_ms": latency_ms,
        "cores": os.cpu_count() or 1,
    }


def scenario_registry(bench: Bench, args: argparse.Namespace) -> None:
    """[4] ``--search-records`` accepted records checked once each: one worker vs a plain search loop, with
    the run's stand-in answering at once; then ``--search-latency-records`` with it answering each search
    after ``--search-latency-ms`` (a fault setting: KwikID's own latency, what a bank sees)."""
    from institutions.models import Institution

    n = args.search_records
    Institution.objects.filter(pk=bench.institution.pk).update(registration_daily_searches=10 * n)
    say(f"\n[4] {n:,} accepted records checked at the registry: one worker vs a plain search loop")
    bench.results["registry"] = _compare(bench, n, 0)
    if args.search_latency_records:
        m, latency = args.search_latency_records, args.search_latency_ms
        say(f"    ... and {m:,} records with the stand-in answering each search after {latency:g} ms")
        bench.results["registry_latency"] = _compare(bench, m, latency)
