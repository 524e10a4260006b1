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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    RESULTS,
    ROOT,
    StandInProcess,
    Stopwatch,
    WorkerProcess,
    cpu_seconds,
    run_json,
    say,
)

TOKEN = "bench-token-0123456789abcdef"
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

    def use_standin(self, standin: StandInProcess) -> None:
        self.standin = standin
        self.institution.api_base_url = standin.url
        self.institution.save(update_fields=["api_base_url"])

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
    ) -> dict[str, Any]:
        """Start ``workers`` worker processes, send the assemble task, and time until every record is in
        an accepted batch. Returns seconds, records/s, the workers' peak RSS and phase times."""
        import redis
        from django.db import connection

        from uploads.tasks import batch_assemble, uploads_sweep

        broker = redis.Redis.from_url(self.env["REDIS_URL"])
        for key in broker.scan_iter(match=QUEUE + "*"):
            broker.delete(key)  # nothing left from an aborted run; only our keys: the database may be shared
        cprofile = ["-m", "cProfile", "-o", str(RESULTS / "worker.prof")] if profile == "cprofile" else []
        procs = [
            WorkerProcess(self.env, f"bench-{label}-{n}", cprofile if n == 0 else ()) for n in range(workers)
        ]
        spy: subprocess.Popen[bytes] | None = None
        autovacuum = AutovacuumStandIn()
        try:
            for proc in procs:
                proc.wait_ready()
            idle_kb = [proc.memory_kb()["VmRSS"] for proc in procs]
            # CPU time used during the run, to show what the cores allow. PostgreSQL's share is left out:
            # Celery closes the database connection after every task, so its server processes come and go.
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in procs}
            standin_cpu_before = cpu_seconds(self.standin.process.pid)
            if profile == "py-spy":
                spy = subprocess.Popen(
                    [
                        os.environ.get("PY_SPY", "py-spy"),
                        "record",
                        "--pid",
                        str(procs[0].pid),
                        "--rate",
                        "200",
                        "--format",
                        "raw",
                        "--output",
                        str(RESULTS / "worker-py-spy.txt"),
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
            for proc in procs:
                proc.stop()
        seconds = finished - started
        return {
            "seconds": seconds,
            "records": expected,
            "rate": expected / seconds,
            "batches": batches,
            "attempts": attempts,
            "assembled_after": float(last_assembled) - started,
            "first_sent_after": float(first_sent) - started,
            "peak_mb": max(peak_kb) / 1024,
            "idle_mb": max(idle_kb) / 1024,
            "rerung": rerung,
            "cpu_workers": cpu_workers,
            "cpu_standin": cpu_standin,
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


def scenario_ratio(bench: Bench, args: argparse.Namespace) -> None:
    """[1] N approved records (``--records``) uploaded by ONE real worker process, timed from the assemble
    task being sent to the last batch accepted; on the same records and batch size, bench/plain_upload.py
    POSTs the same bodies with requests on one Session (the bodies built beforehand, outside its timing),
    before and after the portal. Goal: portal <= 1.5x the plain script."""
    n = args.records
    say(f"\n[1] {n:,} records, {bench.batch_size} a request: one worker vs a plain requests loop")
    seconds = bench.fresh_records(n, "U1-")
    say(f"    created {n:,} approved records in {seconds:.1f} s")
    standin = StandInProcess(bench.env, 0, TOKEN)
    bench.use_standin(standin)
    try:
        with tempfile.TemporaryDirectory(prefix="ckyc-bench-") as tmp:
            bodies = Path(tmp) / "bodies.bin"
            with Stopwatch() as watch:
                requests, records = bench.write_bodies(bodies)
            bench.results["build_s"] = build_s = watch.seconds
            say(f"    built {requests} bodies ({records:,} records) in {build_s:.1f} s")
            assert records == n
            plain = [run_plain(bench.env, bodies, standin)]
            stats = check_standin(standin, n, requests, "plain script")
            last_plain_body = stats["last_request"]["body"]
            standin.reset()
            say(f"    plain #1: {plain[0]['seconds']:.2f} s  ({n / plain[0]['seconds']:,.0f} records/s)")

            bench.results["portal"] = portal = bench.upload(n, 1, label="ratio", profile=args.profile)
            stats = check_standin(standin, n, requests, "portal run")
            # The same bodies: the last request of both runs carries the same JSON.
            bench.results["same_bodies"] = stats["last_request"]["body"] == last_plain_body
            standin.reset()
            say(f"    portal:  {portal['seconds']:.2f} s  ({portal['rate']:,.0f} records/s)")

            plain.append(run_plain(bench.env, bodies, standin))
            check_standin(standin, n, requests, "plain script")
            standin.reset()
            say(f"    plain #2: {plain[1]['seconds']:.2f} s  ({n / plain[1]['seconds']:,.0f} records/s)")
            bench.results["plain"] = [p["seconds"] for p in plain]
            bench.results["body_mb"] = plain[0]["bytes"] / 1e6
    finally:
        standin.stop()


def scenario_scaling(bench: Bench, args: argparse.Namespace) -> None:
    """[2] ``--workers`` workers vs 1 worker on ``--parallel-records`` records, against a stand-in that
    answers after ``--latency-ms``. Goal: >= 3.5x."""
    n = args.parallel_records
    say(
        f"\n[2] {n:,} records ({math.ceil(n / bench.batch_size)} requests), stand-in latency "
        f"{args.latency_ms:g} ms: 1 vs {args.workers} workers"
    )
    standin = StandInProcess(bench.env, args.latency_ms, TOKEN)
    bench.use_standin(standin)
    try:
        for workers in (1, args.workers):
            bench.fresh_records(n, "U2-")
            result = bench.upload(n, workers, label=f"scale{workers}")
            check_standin(standin, n, math.ceil(n / bench.batch_size), f"{workers} workers")
            standin.reset()
            bench.results[f"scale_{workers}"] = result
            say(f"    {workers} worker(s): {result['seconds']:.2f} s  ({result['rate']:,.0f} records/s)")
    finally:
        standin.stop()


def scenario_memory(bench: Bench, args: argparse.Namespace) -> None:
    """[3] The worker's peak RSS (VmHWM) while uploading ``--records-for-memory`` records, and the time it
    took to create them. Goal: < 250 MB for 1,000,000 (the report extrapolates a smaller run)."""
    n = args.records_for_memory
    say(f"\n[3] peak RSS of one worker uploading {n:,} records")
    seconds = bench.fresh_records(n, "U3-")
    bench.results["memory_create_s"] = seconds
    say(f"    created {n:,} approved records in {seconds:.1f} s ({n / seconds:,.0f} rows/s)")
    standin = StandInProcess(bench.env, 0, TOKEN)
    bench.use_standin(standin)
    try:
        result = bench.upload(n, 1, label="memory")
        check_standin(standin, n, None, "memory run")
        bench.results["memory"] = result
        say(
            f"    uploaded in {result['seconds']:.1f} s ({result['rate']:,.0f} records/s); "
            f"peak RSS {result['peak_mb']:.0f} MB (idle {result['idle_mb']:.0f} MB)"
        )
    finally:
        standin.stop()


# The upload path's SQL for one worker, without Python: per batch the statements batch_assemble and
# batch_send issue (claim, status moves with their audit events, batch, items, attempt, outcome), each of
# the portal's transactions committed as the portal commits it. What the database alone costs.
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
        -- batch_assemble: claim, move approved -> batched with events, the batch and its items
        SELECT array_agg(id), array_agg(kyc_ref_no) INTO ids, refs FROM (
            SELECT id, kyc_ref_no FROM records_kycrecord WHERE branch_id = p_branch AND status = 'approved'
            ORDER BY reviewed_at, id LIMIT p_size FOR UPDATE SKIP LOCKED) c;
        EXIT WHEN ids IS NULL;
        WITH m AS (UPDATE records_kycrecord SET status = 'batched', updated_at = now()
                   WHERE id = ANY(ids) AND status = 'approved' RETURNING id)
        SELECT array_agg(id) INTO moved FROM m;
        INSERT INTO records_recordevent (record_id, actor_id, action, from_status, to_status, reason,
                                         changed_fields, created_at)
            SELECT id, NULL, 'batched', 'approved', 'batched', '', '[]', now()
            FROM records_kycrecord WHERE id = ANY(moved);
        INSERT INTO uploads_uploadbatch (status, record_count, request_summary, attempt_count, attempt_limit,
                                         response_message, response_status, error, created_at, branch_id,
                                         institution_id)
            VALUES ('ready', p_size, jsonb_build_object('kyc_ref_nos', to_jsonb(refs)), 0, 5, '', '', '',
                    now(), p_branch, p_institution)
            RETURNING id INTO b;
        INSERT INTO uploads_batchitem (batch_id, record_id, position, outcome, message)
            SELECT b, t.id, t.n - 1, 'pending', '' FROM unnest(moved) WITH ORDINALITY AS t(id, n);
        COMMIT;
        -- batch_send: claim, read, attempt, then the outcome
        UPDATE uploads_uploadbatch SET status = 'sending', lease_expires_at = now() + interval '5 minutes',
            attempt_count = attempt_count + 1 WHERE id = b AND status IN ('ready', 'retry_wait');
        COMMIT;
        PERFORM count(*) FROM uploads_uploadattempt WHERE batch_id = b AND duration_ms IS NULL;
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
        SELECT array_agg(id) INTO moved FROM m;
        INSERT INTO records_recordevent (record_id, actor_id, action, from_status, to_status, reason,
                                         changed_fields, created_at)
            SELECT id, NULL, 'uploaded', 'batched', 'uploaded', 'ok', '[]', now()
            FROM records_kycrecord WHERE id = ANY(moved);
        COMMIT;
        n := n + 1;
    END LOOP;
END $$;
"""


def scenario_floor(bench: Bench, args: argparse.Namespace) -> None:
    """[0] The upload path's SQL alone (FLOOR_PROCEDURE) on ``--records`` fresh approved records: what
    PostgreSQL needs whatever the Python side does."""
    import psycopg

    n = args.records
    say(f"\n[0] the upload path's SQL alone, no Python, on {n:,} records")
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
    bench.results["floor_s"] = seconds
    say(f"    {seconds:.2f} s  ({n / seconds:,.0f} records/s)")
