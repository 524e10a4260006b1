"""Upload benchmark (`make bench`): the portal's Celery upload path against the KwikID stand-in.

1. N approved records (default 100,000) uploaded by ONE real worker process (``--pool=solo``), timed from
   the assemble task being sent to the last batch accepted; in the same run, on the same records and batch
   size, a plain script (bench/plain_upload.py) POSTs the same bodies with requests on one Session (the
   bodies are built beforehand, outside its timing). Goal: portal <= 1.5x the plain script.
2. 4 workers vs 1 worker against a stand-in answering after 200 ms (default 20,000 records). Goal: >= 3.5x.
3. The worker's peak RSS (VmHWM) while uploading ``--records-for-memory`` records. Goal: < 250 MB for
   1,000,000. The default is 300,000 so that the whole run stays under 10 minutes on 2 cores (with the
   partial index record_approved_queue, 1,000,000 takes about 14 minutes on its own: 2 to create, 12 to
   upload; before it, assembling sorted the whole backlog per batch and took 45). The table extrapolates
   the peak to 1,000,000; ``--records-for-memory 1000000`` measures it; ``--quick`` is a smoke run.
0. (Run first; ``--only floor``) the SQL of that upload path alone, in one PL/pgSQL procedure
   (FLOOR_PROCEDURE), on the same records: what PostgreSQL needs whatever the Python side does.

Records are created fast (bench/seed.py: Fernet-encrypted in a tight loop, COPY in chunks); creation is
timed and printed. Where PostgreSQL runs with ``autovacuum = off`` (these test machines), a thread runs
ANALYZE/VACUUM where autovacuum would, so plans follow the data as they would in production.

Uses PostgreSQL and Redis from DATABASE_URL / REDIS_URL (the Makefile's TEST_ENV) but its own database,
``ckycportal_bench`` (dropped, created and migrated here), Redis database 7 and its own queue name; set
BENCH_DATABASE_URL / BENCH_REDIS_URL to choose others. The stand-in runs in its own process
(``python -m kwikid_standin``). Results: a table on stdout and in bench/results/latest.txt.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/run.py`: the project root is the import root

RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / ".local" / "bench"
TOKEN = "bench-token-0123456789abcdef"
QUEUE = "ckycportal-bench"
DEFAULT_DB_NAME = "ckycportal_bench"
DEFAULT_REDIS_DB = "7"
# Progress stalled this long with READY batches and an empty queue: their doorbells were lost.
STALL_SECONDS = 40
PROBLEM_STATUSES = ("rejected", "unknown", "failed", "paused", "cancelled")


# --- configuration ------------------------------------------------------------------------------------


def _replace_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def bench_environment() -> dict[str, str]:
    """The environment of every process of the benchmark: TEST_ENV with the bench's database and Redis."""
    db_url = os.environ.get("BENCH_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not db_url:
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            sys.exit(
                "Run `make bench` (needs DATABASE_URL of a PostgreSQL server), or set BENCH_DATABASE_URL."
            )
        db_url = _replace_path(os.environ["DATABASE_URL"], "/" + DEFAULT_DB_NAME)
    if not redis_url:
        if not os.environ.get("REDIS_URL", "").startswith("redis"):
            sys.exit("Run `make bench` (needs REDIS_URL), or set BENCH_REDIS_URL.")
        redis_url = _replace_path(os.environ["REDIS_URL"], "/" + DEFAULT_REDIS_DB)
    name = urlsplit(db_url).path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"Refusing to drop and recreate database {name!r}: its name must contain 'bench'.")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        CELERY_QUEUE=QUEUE,
        PORTAL_LOCAL_DIR=str(LOGS),
        DJANGO_SETTINGS_MODULE="ckycportal.settings",
        PYTHONPATH=str(ROOT),
    )
    return env


def recreate_database(db_url: str) -> None:
    import psycopg

    name = urlsplit(db_url).path.lstrip("/")
    with psycopg.connect(_replace_path(db_url, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


# --- processes ----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StandInProcess:
    """``python -m kwikid_standin`` on a free port, in its own process (and so its own GIL)."""

    def __init__(self, env: dict[str, str], latency_ms: float) -> None:
        self.latency_ms = latency_ms
        self._log = open(LOGS / "standin.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kwikid_standin", "--port", "0", "--latency-ms", str(latency_ms)],
            cwd=ROOT,
            env={**env, "KWIKID_STANDIN_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if " on http" not in line:
            self.stop()
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.url = line.split(" on ", 1)[1].split()[0]

    def _call(self, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method="POST" if body else "GET")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/_standin/stats")  # type: ignore[no-any-return]

    def reset(self) -> None:
        self._call("/_standin/reset", b"{}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class WorkerProcess:
    """One real Celery worker (``--pool=solo``): tasks run in this very process, so its RSS is theirs."""

    def __init__(self, env: dict[str, str], name: str, profile: str | None = None) -> None:
        self.log_path = LOGS / f"{name}.log"
        self.log_path.write_bytes(b"")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        command = [sys.executable]
        if profile == "cprofile":
            command += ["-m", "cProfile", "-o", str(RESULTS / "worker.prof")]
        command += [
            "-m",
            "celery",
            "-A",
            "ckycportal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}@%h",
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited at start-up; see {self.log_path.name} in .local/bench")
            time.sleep(0.1)
        raise RuntimeError("the worker did not become ready in time")

    def memory_kb(self) -> dict[str, int]:
        """VmHWM (peak resident set) and VmRSS of the worker process, in kB."""
        values = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    values[key] = int(rest.split()[0])
        return values

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: cProfile, if any, writes its file
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


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

        from uploads.tasks import assemble_batches, sweep_uploads

        broker = redis.Redis.from_url(self.env["REDIS_URL"])
        for key in broker.scan_iter(match=QUEUE + "*"):
            broker.delete(key)  # nothing left from an aborted run; only our keys: the database may be shared
        procs = [
            WorkerProcess(self.env, f"bench-{label}-{n}", profile if n == 0 else None) for n in range(workers)
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
            assemble_batches.delay()
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
                    print(
                        f"    !!! {by_status['ready'][0]} READY batches without a message: sweeping",
                        flush=True,
                    )
                    sweep_uploads.delay()
                    rerung += 1
                    last_change = time.monotonic()
                if time.time() - started > timeout:
                    raise RuntimeError(f"timed out after {timeout:.0f} s with {done} of {expected} uploaded")
                if time.monotonic() > next_report:
                    elapsed = time.time() - started
                    rss = ", ".join(f"{proc.memory_kb()['VmRSS'] / 1024:.0f}" for proc in procs)
                    print(
                        f"    ... {done:,} of {expected:,} uploaded after {elapsed:.0f} s; RSS {rss} MB",
                        flush=True,
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
    from kwikid.client import UPLOAD_PATH

    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "plain_upload.py"),
            str(bodies),
            f"{standin.url}/{UPLOAD_PATH}",
        ],
        cwd=ROOT,
        env={**env, "BENCH_KWIKID_TOKEN": TOKEN},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


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
    n = args.records
    print(
        f"\n[1] {n:,} records, {bench.batch_size} a request: one worker vs a plain requests loop", flush=True
    )
    seconds = bench.fresh_records(n, "U1-")
    print(f"    created {n:,} approved records in {seconds:.1f} s", flush=True)
    standin = StandInProcess(bench.env, 0)
    bench.use_standin(standin)
    try:
        with tempfile.TemporaryDirectory(prefix="ckyc-bench-") as tmp:
            bodies = Path(tmp) / "bodies.bin"
            started = time.perf_counter()
            requests, records = bench.write_bodies(bodies)
            bench.results["build_s"] = build_s = time.perf_counter() - started
            print(f"    built {requests} bodies ({records:,} records) in {build_s:.1f} s", flush=True)
            assert records == n
            plain = [run_plain(bench.env, bodies, standin)]
            stats = check_standin(standin, n, requests, "plain script")
            last_plain_body = stats["last_request"]["body"]
            standin.reset()
            print(
                f"    plain #1: {plain[0]['seconds']:.2f} s  ({n / plain[0]['seconds']:,.0f} records/s)",
                flush=True,
            )

            bench.results["portal"] = portal = bench.upload(n, 1, label="ratio", profile=args.profile)
            stats = check_standin(standin, n, requests, "portal run")
            # The same bodies: the last request of both runs carries the same JSON.
            bench.results["same_bodies"] = stats["last_request"]["body"] == last_plain_body
            standin.reset()
            print(f"    portal:  {portal['seconds']:.2f} s  ({portal['rate']:,.0f} records/s)", flush=True)

            plain.append(run_plain(bench.env, bodies, standin))
            check_standin(standin, n, requests, "plain script")
            standin.reset()
            print(
                f"    plain #2: {plain[1]['seconds']:.2f} s  ({n / plain[1]['seconds']:,.0f} records/s)",
                flush=True,
            )
            bench.results["plain"] = [p["seconds"] for p in plain]
            bench.results["body_mb"] = plain[0]["bytes"] / 1e6
    finally:
        standin.stop()


def scenario_scaling(bench: Bench, args: argparse.Namespace) -> None:
    n = args.parallel_records
    print(
        f"\n[2] {n:,} records ({math.ceil(n / bench.batch_size)} requests), stand-in latency "
        f"{args.latency_ms:g} ms: 1 vs {args.workers} workers",
        flush=True,
    )
    standin = StandInProcess(bench.env, args.latency_ms)
    bench.use_standin(standin)
    try:
        for workers in (1, args.workers):
            bench.fresh_records(n, "U2-")
            result = bench.upload(n, workers, label=f"scale{workers}")
            check_standin(standin, n, math.ceil(n / bench.batch_size), f"{workers} workers")
            standin.reset()
            bench.results[f"scale_{workers}"] = result
            print(
                f"    {workers} worker(s): {result['seconds']:.2f} s  ({result['rate']:,.0f} records/s)",
                flush=True,
            )
    finally:
        standin.stop()


def scenario_memory(bench: Bench, args: argparse.Namespace) -> None:
    n = args.records_for_memory
    print(f"\n[3] peak RSS of one worker uploading {n:,} records", flush=True)
    seconds = bench.fresh_records(n, "U3-")
    bench.results["memory_create_s"] = seconds
    print(f"    created {n:,} approved records in {seconds:.1f} s ({n / seconds:,.0f} rows/s)", flush=True)
    standin = StandInProcess(bench.env, 0)
    bench.use_standin(standin)
    try:
        result = bench.upload(n, 1, label="memory")
        check_standin(standin, n, None, "memory run")
        bench.results["memory"] = result
        print(
            f"    uploaded in {result['seconds']:.1f} s ({result['rate']:,.0f} records/s); "
            f"peak RSS {result['peak_mb']:.0f} MB (idle {result['idle_mb']:.0f} MB)",
            flush=True,
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
    """The upload path's SQL alone (FLOOR_PROCEDURE) on N fresh approved records."""
    import psycopg

    n = args.records
    print(f"\n[0] the upload path's SQL alone, no Python, on {n:,} records", flush=True)
    bench.fresh_records(n, "U0-")
    with psycopg.connect(bench.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(FLOOR_PROCEDURE)  # type: ignore[arg-type]
        started = time.perf_counter()
        conn.execute(
            "CALL bench_sql_floor(%s, %s, %s)", [bench.branch.pk, bench.institution.pk, bench.batch_size]
        )
        seconds = time.perf_counter() - started
        left = conn.execute("SELECT count(*) FROM records_kycrecord WHERE status <> 'uploaded'").fetchone()
    assert left is not None and left[0] == 0, "the floor left records behind"
    bench.results["floor_s"] = seconds
    print(f"    {seconds:.2f} s  ({n / seconds:,.0f} records/s)", flush=True)


# --- report -------------------------------------------------------------------------------------------


def report(bench: Bench, args: argparse.Namespace, total: float) -> str:
    r = bench.results
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    if "portal" in r:
        portal, plain = r["portal"], min(r["plain"])
        ratio = portal["seconds"] / plain
        n = portal["records"]
        rows += [
            (f"1 worker, {n:,} records", f"{portal['seconds']:.2f} s", f"{portal['rate']:,.0f} rec/s", ""),
            (
                "  of which assembling",
                f"{portal['assembled_after']:.2f} s",
                f"first POST at {portal['first_sent_after']:.2f} s",
                "",
            ),
            (
                "plain requests loop (best of 2)",
                f"{plain:.2f} s",
                f"{n / plain:,.0f} rec/s",
                "runs: " + ", ".join(f"{s:.2f}" for s in r["plain"]),
            ),
            ("portal / plain", f"{ratio:.2f}x", "goal <= 1.5x", verdict(ratio <= 1.5)),
            (
                "  for scale: building the bodies",
                f"{r['build_s']:.2f} s",
                f"{n / r['build_s']:,.0f} rec/s",
                "from the fields: ORM read + decrypt + payload + JSON (the portal sends frozen payloads)",
            ),
            (
                "  portal / (building + plain)",
                f"{portal['seconds'] / (r['build_s'] + plain):.2f}x",
                "",
                "what the worker's own bookkeeping costs on top",
            ),
        ]
    if "floor_s" in r:
        rows.append(
            (
                "upload path's SQL alone, no Python",
                f"{r['floor_s']:.2f} s",
                f"{args.records / r['floor_s']:,.0f} rec/s",
                "bench/run.py FLOOR_PROCEDURE: the statements of assembling and sending, same commits",
            )
        )
        if "plain" in r:
            rows.append(("  SQL alone / plain", f"{r['floor_s'] / min(r['plain']):.2f}x", "", ""))
    if "scale_1" in r:
        one, many = r["scale_1"], r[f"scale_{args.workers}"]
        speedup = one["seconds"] / many["seconds"]
        rows += [
            (
                f"1 worker, {args.latency_ms:g} ms latency",
                f"{one['seconds']:.2f} s",
                f"{one['rate']:,.0f} rec/s",
                f"{one['records']:,} records, {one['batches']} requests",
            ),
            (
                f"{args.workers} workers, same",
                f"{many['seconds']:.2f} s",
                f"{many['rate']:,.0f} rec/s",
                f"assembled after {many['assembled_after']:.2f} s (1 worker: {one['assembled_after']:.2f} s)",
            ),
            (f"speed-up {args.workers} vs 1", f"{speedup:.2f}x", "goal >= 3.5x", verdict(speedup >= 3.5)),
        ]
        cores = os.cpu_count() or 1
        for run, label in ((one, "1 worker"), (many, f"{args.workers} workers")):
            rows.append(
                (
                    f"  CPU used, {label}",
                    f"{run['cpu_workers'] + run['cpu_standin']:.1f} s",
                    f"workers {run['cpu_workers']:.1f}, stand-in {run['cpu_standin']:.1f}",
                    "PostgreSQL's not counted",
                )
            )
        # However the work is shared, N workers on C cores cannot finish before (CPU used) / C, nor
        # before the 1-worker time / N: the best speed-up this machine allows for this much work (an
        # optimistic bound: PostgreSQL's CPU and everything else running on the machine lower it).
        many_cpu = many["cpu_workers"] + many["cpu_standin"]
        bound = one["seconds"] / max(many_cpu / cores, one["seconds"] / args.workers)
        rows.append(
            (
                f"  at most, on {cores} cores",
                f"{bound:.2f}x",
                f"1-worker time / max(CPU used / {cores}, 1-worker time / {args.workers})",
                "without PostgreSQL's CPU and other load",
            )
        )
    if "memory" in r:
        mem = r["memory"]
        rows += [
            (
                f"creating {mem['records']:,} records",
                f"{r['memory_create_s']:.1f} s",
                f"{mem['records'] / r['memory_create_s']:,.0f} rows/s",
                "encrypt + COPY, 2 processes",
            ),
            (
                f"1 worker, {mem['records']:,} records",
                f"{mem['seconds']:.1f} s",
                f"{mem['rate']:,.0f} rec/s",
                f"assembling {mem['assembled_after']:.1f} s",
            ),
            (
                "worker peak RSS (VmHWM)",
                f"{mem['peak_mb']:.0f} MB",
                "goal < 250 MB",
                verdict(mem["peak_mb"] < 250) + f" (idle {mem['idle_mb']:.0f} MB)",
            ),
        ]
        if mem["records"] < 1_000_000:
            guess = mem["idle_mb"] + (mem["peak_mb"] - mem["idle_mb"]) * 1_000_000 / mem["records"]
            rows.append(
                ("  at 1,000,000, extrapolated", f"~{guess:.0f} MB", "linear in N", verdict(guess < 250))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    lines = [
        f"CKYC Portal upload benchmark, {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; batch size {bench.batch_size}; whole run {total / 60:.1f} min",
    ]
    if args.profile:
        lines.append(f"(worker profiled with {args.profile}: its timings are inflated)")
    vacuums = sum(v.get("autovacuum", 0) for v in r.values() if isinstance(v, dict))
    if vacuums:
        lines.append(
            f"(autovacuum is off on this server: the bench ran ANALYZE/VACUUM {vacuums} time(s) where "
            "autovacuum would have, every 60 s at PostgreSQL's default thresholds)"
        )
    lost = sum(v.get("rerung", 0) for v in r.values() if isinstance(v, dict))
    if lost:
        lines.append(f"(!) {lost} sweep(s) sent for lost task messages: was the Redis database flushed?")
    if r.get("same_bodies") is False:
        lines.append("(!) the portal's last request differed from the plain script's last body")
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run (about a minute)")
    parser.add_argument(
        "--only",
        choices=("floor", "ratio", "scaling", "memory"),
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
        args.records, args.parallel_records = 5_000, 4_000
        args.records_for_memory = min(args.records_for_memory, 20_000)
    return args


def main() -> int:
    args = parse_args()
    env = bench_environment()
    started = time.perf_counter()
    LOGS.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    print(f"Database {urlsplit(env['DATABASE_URL']).path.lstrip('/')}: recreating and migrating", flush=True)
    recreate_database(env["DATABASE_URL"])
    migrate(env)

    import django

    django.setup()
    bench = Bench(env=env, batch_size=args.batch_size)
    bench.setup()
    only = set(args.only or ("floor", "ratio", "scaling", "memory"))
    if "floor" in only and args.records:
        scenario_floor(bench, args)
    if "ratio" in only and args.records:
        scenario_ratio(bench, args)
    if "scaling" in only and args.parallel_records:
        scenario_scaling(bench, args)
    if "memory" in only and args.records_for_memory:
        scenario_memory(bench, args)
    text = report(bench, args, time.perf_counter() - started)
    print("\n" + text, end="")
    (RESULTS / "latest.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
