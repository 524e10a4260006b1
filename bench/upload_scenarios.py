"""The upload benchmark's scenarios (`make bench`, bench/run.py): the portal's Celery upload path
against the KwikID stand-in, on records made by bench/seed.py in the bench's own database.

``Bench`` is the portal side (an institution, a branch, its maker and checker; fresh approved records; the
request bodies; an upload timed from the assemble task to the last accepted batch); each ``scenario_*``
runs one measurement and records its figures in ``bench.results`` for bench/upload_report.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    RESULTS,
    ROOT,
    WORKER_FLAGS,
    StandInProcess,
    Stopwatch,
    WorkerProcess,
    cpu_seconds,
    machine_busy_seconds,
    postgres_cpu_seconds,
    run_json,
    say,
    task_seconds,
)

TOKEN = "bench-token-0123456789abcdef"
# The worker as docker-compose.yml runs it: one process, four prefork children, one task each at a time.
DOCUMENTED_WORKER_FLAGS = ("--loglevel=INFO", "--concurrency=4", "--prefetch-multiplier=1")


def py_spy() -> str:
    """The py-spy command: $PY_SPY, else the one installed beside this Python (the dev extra)."""
    beside = Path(sys.executable).parent / "py-spy"
    return os.environ.get("PY_SPY") or (str(beside) if beside.exists() else "py-spy")


QUEUE = "ckycportal-bench"
# Progress stalled this long with READY batches and an empty queue: their doorbells were lost.
STALL_SECONDS = 40
PROBLEM_STATUSES = ("rejected", "unknown", "failed", "paused", "cancelled")


# --- the database as production runs it ---------------------------------------------------------------


class AutovacuumStandIn:
    """What autovacuum would do, for servers that run with ``autovacuum = off`` (as these test machines do).

    Without it the planner keeps the statistics of the freshly loaded table (every record approved) while a
    run moves hundreds of thousands of rows to batched and uploaded, and picks plans that scan the whole
    status index for each 500-row update. A background thread checks the tables every NAPTIME seconds and
    runs ANALYZE or VACUUM (ANALYZE) at PostgreSQL's default thresholds, as the autovacuum launcher would.
    """

    NAPTIME = 60  # autovacuum_naptime's default
    TABLES = (
        "records_kycrecord",
        "records_recordevent",
        "uploads_batchitem",
        "uploads_uploadbatch",
        "uploads_uploadattempt",
        "registry_registrycheck",
        "registry_searchattempt",
        "registry_searchday",
    )

    def __init__(self) -> None:
        import threading

        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            self.needed = cursor.fetchone()[0] == "off"
        self.runs: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autovacuum-stand-in", daemon=True)

    def start(self) -> None:
        if self.needed:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=300)

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.NAPTIME):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze "
                        "FROM pg_stat_user_tables "
                        "WHERE relname = ANY(%s)",
                        [list(self.TABLES)],
                    )
                    for table, live, dead, changed in cursor.fetchall():
                        if dead > 50 + 0.2 * live:  # autovacuum_vacuum_threshold and _scale_factor
                            command = f'VACUUM (ANALYZE) "{table}"'
                        elif changed > 50 + 0.1 * live:  # autovacuum_analyze_threshold and _scale_factor
                            command = f'ANALYZE "{table}"'
                        else:
                            continue
                        cursor.execute(command)
                        self.runs.append(command)
        finally:
            connection.close()


# --- the portal side ----------------------------------------------------------------------------------


@dataclass
class Bench:
    env: dict[str, str]
    batch_size: int
    institution: Any = None
    branch: Any = None
    owners: Any = None
    standin: Any = None
    standins: dict[bool, StandInProcess] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def setup(self) -> None:
        from bench.seed import Owners
        from institutions.models import Branch, Institution, Role, User

        self.institution = Institution.objects.create(
            name="Bench Bank",
            fi_code="BENCH01",
            region_code="MH",
            cersai_username="BENCHUSER",
            api_base_url="http://127.0.0.1:9",  # replaced by each stand-in's address
            api_token=TOKEN,
            max_records_per_request=self.batch_size,
        )
        self.branch = Branch.objects.create(institution=self.institution, code="BR001", name="Bench branch")
        maker = User.objects.create(username="bench-maker", role=Role.MAKER, password="!")
        checker = User.objects.create(username="bench-checker", role=Role.CHECKER, password="!")
        maker.branches.set([self.branch])
        checker.branches.set([self.branch])
        self.owners = Owners(branch_id=self.branch.pk, maker_id=maker.pk, checker_id=checker.pk)

    def set_batch_size(self, size: int) -> None:
        """Records per request from now on (the institution's ``max_records_per_request``)."""
        self.batch_size = size
        self.institution.max_records_per_request = size
        self.institution.save(update_fields=["max_records_per_request"])

    def use_standin(self, standin: StandInProcess) -> None:
        self.standin = standin
        self.institution.api_base_url = standin.url
        self.institution.save(update_fields=["api_base_url"])

    def standin_for(self, latency_ms: float, *, validate_records: bool = True) -> StandInProcess:
        """The run's stand-in answering after ``latency_ms``, counters and faults cleared, in use: one
        process for the whole run (one each with and without the record check), since starting one and
        warming its check up takes about 3 s."""
        standin = self.standins.get(validate_records)
        if standin is None or standin.process.poll() is not None:
            if standin is not None:
                standin.stop()  # gone: its log closed
            standin = StandInProcess(self.env, latency_ms, TOKEN, validate_records=validate_records)
            self.standins[validate_records] = standin
        else:
            standin.latency_ms = latency_ms  # the reset sets it, once
            standin.reset()
        self.use_standin(standin)
        return standin

    def release_standin(self, *, validate_records: bool) -> None:
        """Stop that stand-in now (the next ``standin_for`` starts another)."""
        standin = self.standins.pop(validate_records, None)
        if standin is not None:
            standin.stop()

    def close(self) -> None:
        """Stop the run's stand-ins."""
        for validate_records in list(self.standins):
            self.release_standin(validate_records=validate_records)

    def fresh_records(self, count: int, prefix: str) -> float:
        """Empty the record and batch tables, then create ``count`` approved records; returns seconds."""
        from django.db import connection

        from bench.seed import seed

        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE records_recordevent, uploads_uploadattempt, uploads_batchitem, "
                "uploads_uploadbatch, records_kycrecord RESTART IDENTITY CASCADE"
            )
        return seed(count, prefix=prefix, owners=self.owners)

    def write_bodies(self, path: Path) -> tuple[int, int]:
        """The request bodies the portal will send (same order, same grouping), serialised as client.py
        does; returns (requests, records). Not timed."""
        from kwikid.payload import Header, build_request
        from records.models import KycRecord, Status

        header = Header(
            fi_code=self.institution.fi_code,
            version=self.institution.api_version,
            region_code=self.institution.region_code,
            username=self.institution.cersai_username,
            branch_code=self.branch.code,
        )
        records = (
            KycRecord.objects.filter(branch=self.branch, status=Status.APPROVED)
            .order_by("reviewed_at", "pk")
            .iterator(chunk_size=self.batch_size)
        )
        requests = count = 0
        chunk: list[Any] = []
        with open(path, "wb") as out:

            def flush() -> None:
                body = json.dumps(
                    build_request(header, chunk), separators=(",", ":"), allow_nan=False
                ).encode()
                out.write(len(body).to_bytes(8, "big"))
                out.write(body)

            for record in records:
                chunk.append(record)
                if len(chunk) == self.batch_size:
                    flush()
                    requests, count, chunk = requests + 1, count + len(chunk), []
            if chunk:
                flush()
                requests, count = requests + 1, count + len(chunk)
        return requests, count

    def upload(
        self,
        expected: int,
        workers: int,
        *,
        label: str,
        profile: str | None = None,
        flags: Sequence[str] = WORKER_FLAGS,
        while_starting: Callable[[], object] | None = None,
        when_ready: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """Start ``workers`` worker processes (``flags``: one solo process each by default), send the
        assemble task, and time until every record is in an accepted batch. Returns seconds, records/s,
        the workers' peak RSS and CPU, and phase times. ``profile`` profiles the first worker: py-spy
        (every thread, waiting ones included) or cProfile, into bench/results/profile-LABEL.*.
        ``while_starting`` (making the records, say: nothing timed) runs while the workers start, which
        takes them about 3 s; ``when_ready`` once they wait for work, before the upload is sent (a plain
        script's timed run: a waiting worker only blocks on the broker)."""
        import redis
        from django.db import connection

        from uploads.tasks import batch_assemble, uploads_sweep

        broker = redis.Redis.from_url(self.env["REDIS_URL"])
        for key in broker.scan_iter(match=QUEUE + "*"):
            broker.delete(key)  # nothing left from an aborted run; only our keys: the database may be shared
        python_args: list[str] = []
        if profile == "cprofile":
            python_args = ["-m", "cProfile", "-o", str(RESULTS / f"profile-{label}.prof")]
        elif profile == "queries":  # every statement, connection and task counted (bench/count_queries.py)
            out = RESULTS / f"profile-{label}-queries.json"
            python_args = [str(ROOT / "bench" / "count_queries.py"), str(out)]
        procs = [
            WorkerProcess(self.env, f"bench-{label}-{n}", python_args if n == 0 else (), flags)
            for n in range(workers)
        ]
        spy: subprocess.Popen[bytes] | None = None
        autovacuum = AutovacuumStandIn()
        try:
            if while_starting is not None:
                while_starting()
            for proc in procs:
                proc.wait_ready()
            if when_ready is not None:
                when_ready()
            idle_kb = [proc.memory_kb()["VmRSS"] for proc in procs]
            # CPU time used during the run, to show what the cores allow: the workers' and the stand-in's,
            # PostgreSQL's (its backends come and go, so it is read through the postmaster) and the machine's.
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in procs}
            standin_cpu_before = cpu_seconds(self.standin.process.pid)
            busy_before = machine_busy_seconds()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend_pid = cursor.fetchone()[0]
            postgres_before = postgres_cpu_seconds(backend_pid)
            if profile == "py-spy":
                spy = subprocess.Popen(
                    [
                        py_spy(),
                        "record",
                        "--pid",
                        str(procs[0].pid),
                        "--rate",
                        "250",
                        "--idle",  # waiting on PostgreSQL or on KwikID is part of a batch's cost
                        "--format",
                        "raw",
                        "--output",
                        str(RESULTS / f"profile-{label}-py-spy.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            timeout = 120 + expected / 100
            autovacuum.start()
            started = time.time()
            batch_assemble.delay()
            next_report = time.monotonic() + 30
            peak_kb = [0] * workers
            last_seen: Any = None
            last_change, rerung = time.monotonic(), 0
            while True:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT status, count(*), coalesce(sum(record_count), 0) FROM uploads_uploadbatch "
                        "GROUP BY status"
                    )
                    by_status = {status: (n, records) for status, n, records in cursor.fetchall()}
                done = by_status.get("accepted", (0, 0))[1]
                if done >= expected:
                    finished = time.time()
                    break
                problems = {s: by_status[s] for s in PROBLEM_STATUSES if s in by_status}
                if problems:
                    raise RuntimeError(f"batches ended badly: {problems}; see the batch table")
                if by_status != last_seen:
                    last_seen, last_change = by_status, time.monotonic()
                elif (
                    time.monotonic() - last_change > STALL_SECONDS
                    and "ready" in by_status
                    and not broker.llen(QUEUE)
                ):
                    # READY batches, nothing queued, nothing moving: their messages were lost (someone
                    # flushed this Redis database?). Ring again as beat's periodic sweep does in production.
                    say(
                        f"    !!! {by_status['ready'][0]} READY batches without a message: sweeping",
                    )
                    uploads_sweep.delay()
                    rerung += 1
                    last_change = time.monotonic()
                if time.time() - started > timeout:
                    raise RuntimeError(f"timed out after {timeout:.0f} s with {done} of {expected} uploaded")
                if time.monotonic() > next_report:
                    elapsed = time.time() - started
                    rss = ", ".join(f"{proc.memory_kb()['VmRSS'] / 1024:.0f}" for proc in procs)
                    say(
                        f"    ... {done:,} of {expected:,} uploaded after {elapsed:.0f} s; RSS {rss} MB",
                    )
                    next_report += 30
                for n, proc in enumerate(procs):
                    peak_kb[n] = max(peak_kb[n], proc.memory_kb()["VmHWM"])
                time.sleep(0.05)
            peak_kb = [
                max(peak, proc.memory_kb()["VmHWM"]) for peak, proc in zip(peak_kb, procs, strict=True)
            ]
            cpu_workers = sum(cpu_seconds(p.pid) - cpu_before.get(p.pid, 0) for p in procs)
            cpu_standin = cpu_seconds(self.standin.process.pid) - standin_cpu_before
            cpu_machine = machine_busy_seconds() - busy_before
            postgres_after = postgres_cpu_seconds(backend_pid)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT extract(epoch FROM max(b.created_at)), extract(epoch FROM min(a.started_at)), "
                    "count(DISTINCT b.id), count(a.id) FROM uploads_uploadbatch b "
                    "JOIN uploads_uploadattempt a ON a.batch_id = b.id"
                )
                last_assembled, first_sent, batches, attempts = cursor.fetchone()
        finally:
            autovacuum.stop()
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            WorkerProcess.stop_all(procs)
        seconds = finished - started
        assembly_runs = [task_seconds(proc.log_path, "uploads.tasks.batch_assemble") for proc in procs]
        return {
            "seconds": seconds,
            "records": expected,
            "rate": expected / seconds,
            "batches": batches,
            "attempts": attempts,
            "assembled_after": float(last_assembled) - started,
            "assembly_runs": sum(n for n, _ in assembly_runs),
            "assembly_seconds": sum(seconds for _, seconds in assembly_runs),
            "first_sent_after": float(first_sent) - started,
            "peak_mb": max(peak_kb) / 1024,
            "idle_mb": max(idle_kb) / 1024,
            "rerung": rerung,
            "cpu_workers": cpu_workers,
            "cpu_standin": cpu_standin,
            "cpu_machine": cpu_machine,
            **(
                {"cpu_postgres": postgres_after - postgres_before}
                if postgres_before is not None and postgres_after is not None
                else {}
            ),
            "autovacuum": len(autovacuum.runs),
        }


def run_plain(env: dict[str, str], bodies: Path, standin: StandInProcess) -> dict[str, Any]:
    """bench/plain_upload.py POSTs the same bodies in a plain requests loop: its seconds, requests, bytes."""
    from kwikid.client import UPLOAD_PATH

    script = str(ROOT / "bench" / "plain_upload.py")
    command = [sys.executable, script, str(bodies), f"{standin.url}/{UPLOAD_PATH}"]
    return run_json(command, {**env, "BENCH_KWIKID_TOKEN": TOKEN})


def check_standin(standin: StandInProcess, records: int, requests: int | None, what: str) -> dict[str, Any]:
    stats = standin.stats()
    problems = []
    if stats["accepted_records"] != records:
        problems.append(f"accepted {stats['accepted_records']} records, expected {records}")
    if stats["duplicates"]:
        problems.append(f"{stats['duplicates']} records accepted twice")
    if requests is not None and stats["requests"] != requests:
        problems.append(f"{stats['requests']} requests, expected {requests}")
    if problems:
        raise RuntimeError(f"{what}: the stand-in " + "; ".join(problems))
    return stats


# --- scenarios ----------------------------------------------------------------------------------------


def _bodies(bench: Bench, tmp: str, n: int) -> tuple[Path, int]:
    """The request bodies the portal will send for the approved records, written to a file in ``tmp``
    (not timed); returns the file and the number of requests."""
    bodies = Path(tmp) / f"bodies-{bench.batch_size}.bin"
    requests, records = bench.write_bodies(bodies)
    assert records == n, (records, n)
    return bodies, requests


def scenario_latency(bench: Bench, args: argparse.Namespace) -> None:
    """[A] KwikID answering after ``--latency-ms`` (100 ms) plus its record checks: ``--latency-records``
    (3,000) records in batches of ``--latency-batch`` (100), sent by bench/plain_upload.py one request after
    another (the sequential script: best of a run before and one after the portal's), by ONE solo worker
    process, and by the documented worker (docker-compose.yml's command: one process, concurrency 4,
    prefetch 1). Goals: one worker <= 1.15x the script's time; the documented worker >= 3.3x faster than
    the script. Each portal run starts from the assemble task, on the same records, freshly approved."""
    n, size = args.latency_records, args.latency_batch
    say(
        f"\n[A] {n:,} records in batches of {size}, KwikID answering in {args.script_latency_ms:g} ms: "
        "a sequential script, one worker process, the documented worker"
    )
    bench.set_batch_size(size)
    standin = bench.standin_for(args.script_latency_ms)
    result: dict[str, Any] = {"records": n, "batch": size, "latency_ms": args.script_latency_ms}
    try:
        with tempfile.TemporaryDirectory(prefix="ckyc-bench-") as tmp:
            plain: list[float] = []
            made: dict[str, Any] = {}

            def records_and_bodies() -> None:
                bench.fresh_records(n, "LA-")
                made["bodies"], made["requests"] = _bodies(bench, tmp, n)
                result["requests"] = made["requests"]

            def script() -> None:
                plain.append(run_plain(bench.env, made["bodies"], standin)["seconds"])
                check_standin(standin, n, made["requests"], "sequential script")
                standin.reset()
                say(f"    {'script:' if len(plain) == 1 else 'script again:':<19}{plain[-1]:.2f} s")

            for key, flags in (("one", WORKER_FLAGS), ("documented", DOCUMENTED_WORKER_FLAGS)):
                # The first worker starts while the records are made and waits while the script runs.
                run = bench.upload(
                    n,
                    1,
                    label=f"latency-{key}",
                    flags=flags,
                    while_starting=records_and_bodies
                    if key == "one"
                    else lambda: bench.fresh_records(n, "LA-"),
                    when_ready=script if key == "one" else None,
                )
                stats = check_standin(standin, n, made["requests"], f"{key} worker")
                run["service_s"] = stats["service_seconds"]
                standin.reset()
                result[key] = run
                say(f"    {key + ' worker:':<19}{run['seconds']:.2f} s")
            if not args.quick:  # the better of two runs, one on each side of the portal's
                script()
        result["script_runs"] = plain
        bench.results["latency"] = result
    finally:
        bench.set_batch_size(args.batch_size)


def scenario_overhead(bench: Bench, args: argparse.Namespace) -> None:
    """[B] The worker's own time per batch at 0 ms, for batches of each ``--overhead-batches`` size, on
    ``--overhead-records`` records: (ONE solo worker's wall time, assemble task to last batch accepted, minus
    the seconds the stand-in spent answering its requests as the stand-in itself timed them) / batches. The
    same bodies through bench/plain_upload.py give, for scale, the bare loop's time. With ``--only floor`` or
    the whole run, [0] the upload path's SQL alone is measured on the same records, at the first size."""
    n = args.overhead_records
    say(f"\n[B] the worker's own time per batch, KwikID answering at once, {n:,} records")
    standin = bench.standin_for(0)
    made: dict[str, Any] = {}  # each size's bodies and bare loop, from the callables below
    try:
        for index, size in enumerate(args.overhead_batches):
            bench.set_batch_size(size)
            profile = args.profile if index == 0 else None
            made.clear()
            with tempfile.TemporaryDirectory(prefix="ckyc-bench-") as tmp:

                def records_and_bodies() -> None:
                    bench.fresh_records(n, "OV-")
                    made["bodies"], made["requests"] = _bodies(bench, tmp, n)

                def bare_loop() -> None:  # timed, while the worker waits for work
                    made["plain"] = run_plain(bench.env, made["bodies"], standin)
                    made["plain_stats"] = check_standin(standin, n, made["requests"], "plain loop")
                    standin.reset()

                run = bench.upload(
                    n,
                    1,
                    label=f"overhead-{size}",
                    profile=profile,
                    while_starting=records_and_bodies,
                    when_ready=bare_loop,
                )
            requests, plain, plain_stats = made["requests"], made["plain"], made["plain_stats"]
            last_plain_body = plain_stats["last_request"]["body"]
            stats = check_standin(standin, n, requests, f"worker, batches of {size}")
            standin.reset()
            run.update(
                batch=size,
                requests=requests,
                service_s=stats["service_seconds"],
                plain_s=plain["seconds"],
                plain_service_s=plain_stats["service_seconds"],
                same_bodies=stats["last_request"]["body"] == last_plain_body,
                profiled=profile,
            )
            bench.results[f"overhead_{size}"] = run
            own = (run["seconds"] - run["service_s"]) / requests * 1000
            say(
                f"    batches of {size}: worker {run['seconds']:.2f} s, KwikID's answers "
                f"{run['service_s']:.2f} s: {own:.1f} ms a batch of its own; "
                f"bare loop {plain['seconds']:.2f} s"
            )
            if index == 0 and args.with_floor:
                scenario_floor(bench, args, n)
    finally:
        bench.set_batch_size(args.batch_size)


def scenario_scaling(bench: Bench, args: argparse.Namespace) -> None:
    """[2] ``--workers`` workers vs 1 worker on ``--parallel-records`` records, against a stand-in that
    answers after ``--latency-ms``. Goal: >= 3.5x."""
    n = args.parallel_records
    say(
        f"\n[2] {n:,} records ({math.ceil(n / bench.batch_size)} requests), stand-in latency "
        f"{args.latency_ms:g} ms: 1 vs {args.workers} workers"
    )
    standin = bench.standin_for(args.latency_ms)
    for workers in (1, args.workers):
        result = bench.upload(
            n, workers, label=f"scale{workers}", while_starting=lambda: bench.fresh_records(n, "U2-")
        )
        check_standin(standin, n, math.ceil(n / bench.batch_size), f"{workers} workers")
        standin.reset()
        bench.results[f"scale_{workers}"] = result
        say(f"    {workers} worker(s): {result['seconds']:.2f} s  ({result['rate']:,.0f} records/s)")


def scenario_memory(bench: Bench, args: argparse.Namespace) -> None:
    """[3] The worker's peak RSS (VmHWM) while uploading ``--records-for-memory`` records, and before that a
    quarter as many (the report extrapolates to 1,000,000 through the two). Goal: < 250 MB for 1,000,000.
    The stand-in does not check the records here: a memory figure, and the checks would only add minutes."""
    n = args.records_for_memory
    sizes = [n] if n >= 1_000_000 else [max(n // 4, 1), n]
    say(f"\n[3] peak RSS of one worker uploading {' then '.join(f'{size:,}' for size in sizes)} records")
    standin = bench.standin_for(0, validate_records=False)  # only this row's: stopped at its end
    try:
        for size in sizes:
            seconds = bench.fresh_records(size, "U3-")
            say(f"    created {size:,} approved records in {seconds:.1f} s ({size / seconds:,.0f} rows/s)")
            result = bench.upload(size, 1, label=f"memory-{size}")
            check_standin(standin, size, None, "memory run")
            standin.reset()
            result["create_s"] = seconds
            bench.results["memory" if size == n else "memory_small"] = result
            say(
                f"    uploaded in {result['seconds']:.1f} s ({result['rate']:,.0f} records/s); "
                f"peak RSS {result['peak_mb']:.0f} MB (idle {result['idle_mb']:.0f} MB)"
            )
    finally:
        bench.release_standin(validate_records=False)


# The upload path's SQL for one worker, without Python: per batch the statements batch_assemble and
# batch_send issue (claim, status moves with their audit events, batch, items, attempt, outcome), each of
# the portal's transactions committed as the portal commits it (without waiting for the disk where the
# portal does not wait). What the database alone costs.
FLOOR_PROCEDURE = """
CREATE OR REPLACE PROCEDURE bench_sql_floor(p_branch bigint, p_institution bigint, p_size int)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    refs text[];
    moved bigint[];
    b bigint;
    a bigint;
    n int := 0;
BEGIN
    LOOP
        -- batch_assemble: claim, move approved -> batched with events, the batch and its items; its commit,
        -- like the send's claim, does not wait for the disk (ckycportal.db.atomic_async_commit)
        SET LOCAL synchronous_commit = off;
        SELECT array_agg(id), array_agg(kyc_ref_no) INTO ids, refs FROM (
            SELECT id, kyc_ref_no FROM records_kycrecord WHERE branch_id = p_branch AND status = 'approved'
            ORDER BY reviewed_at, id LIMIT p_size FOR UPDATE SKIP LOCKED) c;
        EXIT WHEN ids IS NULL;
        WITH m AS (UPDATE records_kycrecord SET status = 'batched', updated_at = now()
                   WHERE id = ANY(ids) AND status = 'approved' RETURNING id),
             e AS (INSERT INTO records_recordevent (record_id, actor_id, action, from_status, to_status,
                                                    reason, changed_fields, created_at)
                   SELECT id, NULL, 'batched', 'approved', 'batched', '', '[]', now() FROM m
                   RETURNING record_id)
        SELECT array_agg(record_id) INTO moved FROM e;
        INSERT INTO uploads_uploadbatch (status, record_count, request_summary, attempt_count, attempt_limit,
                                         response_message, response_status, error, created_at, branch_id,
                                         institution_id)
            VALUES ('ready', p_size, jsonb_build_object('kyc_ref_nos', to_jsonb(refs)), 0, 5, '', '', '',
                    now(), p_branch, p_institution)
            RETURNING id INTO b;
        INSERT INTO uploads_batchitem (batch_id, record_id, position, outcome, message)
            SELECT b, t.id, t.n - 1, 'pending', '' FROM unnest(moved) WITH ORDINALITY AS t(id, n);
        COMMIT;
        -- batch_send: claim, read, attempt, then the outcome (a first claim looks for no earlier attempt)
        SET LOCAL synchronous_commit = off;
        UPDATE uploads_uploadbatch SET status = 'sending', lease_expires_at = now() + interval '5 minutes',
            attempt_count = attempt_count + 1 WHERE id = b AND status IN ('ready', 'retry_wait');
        COMMIT;
        SELECT array_agg(record_id ORDER BY position) INTO ids FROM uploads_batchitem
            WHERE batch_id = b AND outcome = 'pending';
        PERFORM sum(length(frozen_payload)) FROM records_kycrecord WHERE id = ANY(ids);
        INSERT INTO uploads_uploadattempt (batch_id, number, started_at, response_body, error_class,
                                           error_message)
            VALUES (b, 1, now(), '', '', '') RETURNING id INTO a;
        COMMIT;
        UPDATE uploads_uploadattempt SET duration_ms = 1, status_code = 200,
            response_body = '{"status":"success"}' WHERE id = a;
        UPDATE uploads_uploadbatch SET status = 'accepted', lease_expires_at = NULL, finished_at = now(),
            response_status_code = 200, response_message = 'ok' WHERE id = b AND status = 'sending';
        UPDATE uploads_batchitem SET outcome = 'accepted', message = 'ok'
            WHERE batch_id = b AND outcome = 'pending';
        WITH m AS (UPDATE records_kycrecord SET status = 'uploaded', updated_at = now(),
                       upload_message = 'ok', uploaded_at = now()
                   WHERE id = ANY(ids) AND status = 'batched' RETURNING id)
        INSERT INTO records_recordevent (record_id, actor_id, action, from_status, to_status, reason,
                                         changed_fields, created_at)
            SELECT id, NULL, 'uploaded', 'batched', 'uploaded', 'ok', '[]', now() FROM m;
        COMMIT;
        n := n + 1;
    END LOOP;
END $$;
"""


def scenario_floor(bench: Bench, args: argparse.Namespace, n: int | None = None) -> None:
    """[0] The upload path's SQL alone (FLOOR_PROCEDURE) on ``n`` fresh approved records (default
    ``--overhead-records``) at the current batch size: what PostgreSQL needs whatever the Python side does."""
    import psycopg

    n = n or args.overhead_records
    say(f"    [0] the upload path's SQL alone, no Python, {n:,} records in batches of {bench.batch_size}")
    bench.fresh_records(n, "U0-")
    with psycopg.connect(bench.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(FLOOR_PROCEDURE)  # type: ignore[arg-type]
        with Stopwatch() as watch:
            conn.execute(
                "CALL bench_sql_floor(%s, %s, %s)", [bench.branch.pk, bench.institution.pk, bench.batch_size]
            )
        seconds = watch.seconds
        left = conn.execute("SELECT count(*) FROM records_kycrecord WHERE status <> 'uploaded'").fetchone()
    assert left is not None and left[0] == 0, "the floor left records behind"
    bench.results["floor"] = {"seconds": seconds, "records": n, "batch": bench.batch_size}
    say(f"        {seconds:.2f} s  ({n / seconds:,.0f} records/s)")
