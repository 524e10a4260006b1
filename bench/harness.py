"""What the benchmarks (and the tests' worker fixtures) share: no scenario here.

- the environment of child processes (database URL, Redis URL, keys and settings variables);
- the bench databases: their URL, creating, dropping and migrating them;
- child processes: a real Celery worker (``--pool=solo``) and the KwikID stand-in, started and stopped;
- measuring: a stopwatch, CPU seconds and resident memory (VmRSS, peak VmHWM) of a process;
- results: progress lines on stdout, JSON lines read from child scripts, tables written to bench/results.

Nothing here imports Django: the benchmarks set the environment before they set Django up, and the tests
import this module beside their own settings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / ".local" / "bench"

# The flags of every worker process: tasks run in the worker process itself (its RSS is theirs), and no
# worker-to-worker chatter.
WORKER_FLAGS = (
    "--pool=solo",
    "--loglevel=INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
)


# --- environment --------------------------------------------------------------------------------------


def with_path(url: str, path: str) -> str:
    """``url`` with its path replaced (a database URL naming another database, a Redis database)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def database_url(db_settings: Mapping[str, Any]) -> str:
    """A Django ``DATABASES`` entry (PostgreSQL) as DATABASE_URL for a child process."""
    password = f":{db_settings['PASSWORD']}" if db_settings.get("PASSWORD") else ""
    return (
        f"postgres://{db_settings['USER']}{password}@{db_settings['HOST']}:{db_settings['PORT']}"
        f"/{db_settings['NAME']}"
    )


def worker_environment(db_url: str, redis_url: str | None = None, **variables: object) -> dict[str, str]:
    """This process's environment for a child process (a worker, a script) on the database ``db_url``;
    ``redis_url`` as REDIS_URL if given (else this process's), and ``variables`` (as strings) on top."""
    env = dict(os.environ)
    env["DATABASE_URL"] = db_url
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env.update({key: str(value) for key, value in variables.items()})
    return env


def bench_database_url(variable: str, default_name: str, target: str) -> str:
    """The database a benchmark owns: $``variable``, or ``default_name`` on DATABASE_URL's server. Its
    name must contain "bench" (benchmarks drop, empty or reseed it)."""
    url = os.environ.get(variable)
    if not url:
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            sys.exit(f"Run `make {target}` (needs DATABASE_URL of a PostgreSQL server), or set {variable}.")
        url = with_path(os.environ["DATABASE_URL"], "/" + default_name)
    name = database_name(url)
    if "bench" not in name:
        sys.exit(f"Refusing to use database {name!r} for a benchmark: its name must contain 'bench'.")
    return url


def bench_redis_url(variable: str, default_db: str, target: str) -> str:
    """$``variable``, or Redis database ``default_db`` on REDIS_URL's server."""
    url = os.environ.get(variable)
    if not url:
        if not os.environ.get("REDIS_URL", "").startswith("redis"):
            sys.exit(f"Run `make {target}` (needs REDIS_URL), or set {variable}.")
        url = with_path(os.environ["REDIS_URL"], "/" + default_db)
    return url


def bench_environment(db_url: str, redis_url: str | None = None, **variables: object) -> dict[str, str]:
    """The environment of a benchmark and its child processes: its database (and Redis), its logs under
    .local/bench, the portal's settings and the project root on the import path."""
    return worker_environment(
        db_url,
        redis_url,
        PORTAL_LOCAL_DIR=LOGS,
        DJANGO_SETTINGS_MODULE="ckycportal.settings",
        PYTHONPATH=ROOT,
        **variables,
    )


# --- databases ----------------------------------------------------------------------------------------


def _admin_url(url: str) -> str:
    return with_path(url, "/postgres")


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


def create_database(url: str, *, if_missing: bool = False) -> None:
    import psycopg

    name = database_name(url)
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        if if_missing and conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')


def recreate_database(url: str) -> None:
    """An empty database of that name (dropped first, connections included, if it exists)."""
    drop_database(url)
    create_database(url)


def clone_database(url: str, template: str) -> None:
    """The database of ``url`` anew, as a copy of the database named ``template`` (already migrated; no
    session may be connected to it): seconds instead of a migration's tens of seconds."""
    import psycopg

    drop_database(url)
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database_name(url)}" TEMPLATE "{template}"')


# A benchmark's own code and the tests do not shape the migrated database.
_NOT_SCHEMA = frozenset({"bench", "tests"})


def migrations_fingerprint(env: Mapping[str, str]) -> str:
    """What a migrated database may depend on: every Python file of the project's packages (migrations, the
    settings, and the code lists, triggers and fields that migrations import), the installed packages'
    versions (Django's and any app's own migrations) and the settings a data migration may read. Any
    change to the portal's code migrates afresh; runs on the same code copy."""
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256()
    packages = sorted(
        path.parent
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in _NOT_SCHEMA and not path.parent.name.startswith(".")
    )
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    installed = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions())
    digest.update("\n".join(installed).encode())
    settings = sorted((k, v) for k, v in env.items() if k.startswith(("DJANGO_", "FIELD_", "PII_")))
    digest.update(repr(settings).encode())
    return digest.hexdigest()


def migrated_database(url: str, env: Mapping[str, str]) -> bool:
    """The database of ``url`` anew and migrated: a copy of ``NAME_migrated``, kept on the server from an
    earlier run, when that copy's fingerprint (its comment) matches today's code and packages; else
    dropped, created and migrated (``env``), and the copy made anew for the next run. A migration takes
    about 9 s on 2 cores, a copy under one. BENCH_FRESH_MIGRATION=1 in the environment always migrates.
    Returns whether the copy served."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    cache = f"{name}_migrated"
    fingerprint = migrations_fingerprint(env)
    # PostgreSQL cuts a longer name to 63 bytes: the copy would be made and never found.
    keep = len(cache.encode()) <= 63
    if keep and os.environ.get("BENCH_FRESH_MIGRATION") != "1":
        with psycopg.connect(_admin_url(url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [cache]
            ).fetchone()
        if row and row[0] == fingerprint:
            clone_database(url, cache)
            return True
    recreate_database(url)
    migrate(env)
    if keep:
        clone_database(with_path(url, "/" + cache), name)
        with psycopg.connect(_admin_url(url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(cache), sql.Literal(fingerprint)
                )
            )
    return False


def migrate(env: Mapping[str, str]) -> None:
    """``manage.py migrate`` in a child process with ``env`` (its DATABASE_URL)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


# --- processes ----------------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (a worker's warm shutdown), then SIGKILL if it is still there after ``timeout`` seconds."""
    stop_processes([process], timeout)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM to every one of ``processes`` at once, then SIGKILL to any still there ``timeout`` seconds
    later. A solo worker's warm shutdown takes about 1.5 s (its consumer waits out a broker poll): four
    stopped one after another cost six seconds of every row that starts them."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_command(
    name: str | None = None, python_args: Sequence[str] = (), flags: Sequence[str] = WORKER_FLAGS
) -> list[str]:
    command = [sys.executable, *python_args, "-m", "celery", "-A", "ckycportal", "worker", *flags]
    if name:
        command.append(f"--hostname={name}@%h")
    return command


def start_worker(
    env: Mapping[str, str],
    log_path: Path,
    *,
    name: str | None = None,
    python_args: Sequence[str] = (),
    flags: Sequence[str] = WORKER_FLAGS,
) -> subprocess.Popen[bytes]:
    """A real Celery worker process of the portal with ``env``, its output appended to ``log_path``;
    ``name`` sets its hostname (``name@host``), ``python_args`` go before ``-m celery`` (a profiler),
    ``flags`` after ``worker`` (default: one solo process)."""
    with open(log_path, "ab") as log:  # the worker holds its own descriptor
        return subprocess.Popen(
            worker_command(name, python_args, flags), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def worker_ready(log_path: Path) -> bool:
    """Whether the worker writing ``log_path`` has said it is ready to take tasks."""
    return b" ready." in log_path.read_bytes()


def task_seconds(log_path: Path, task: str) -> tuple[int, float]:
    """How many runs of ``task`` (its full name) the worker writing ``log_path`` finished, and their seconds
    in all, from Celery's own "Task NAME[id] succeeded in Ns" lines (worker log level INFO)."""
    pattern = re.compile(rb"Task " + re.escape(task.encode()) + rb"\[[^\]]*\] succeeded in ([0-9.e+-]+)s")
    runs = [float(match.group(1)) for match in pattern.finditer(log_path.read_bytes())]
    return len(runs), sum(runs)


class WorkerProcess:
    """One real Celery worker of the benchmark, its log in .local/bench/NAME.log (emptied first)."""

    def __init__(
        self,
        env: Mapping[str, str],
        name: str,
        python_args: Sequence[str] = (),
        flags: Sequence[str] = WORKER_FLAGS,
    ) -> None:
        self.log_path = LOGS / f"{name}.log"
        self.log_path.write_bytes(b"")
        self.process = start_worker(env, self.log_path, name=name, python_args=python_args, flags=flags)
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker_ready(self.log_path):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited at start-up; see {self.log_path.name} in .local/bench")
            time.sleep(0.1)
        raise RuntimeError("the worker did not become ready in time")

    def memory_kb(self) -> dict[str, int]:
        return memory_kb(self.pid)

    def stop(self) -> None:
        stop_process(self.process, timeout=30)  # a warm shutdown: cProfile, if any, writes its file

    @staticmethod
    def stop_all(workers: Sequence[WorkerProcess]) -> None:
        """Stop ``workers`` together (each a warm shutdown, as ``stop``)."""
        stop_processes([worker.process for worker in workers], timeout=30)


# The stand-in's intake check in the benchmarks: the portal's own CKYC rules on every record.
STANDIN_RECORD_CHECK = "bench.standin_rules:portal_rules"


class StandInProcess:
    """``python -m kwikid_standin`` on a free port, in its own process (and so its own GIL); it checks
    every uploaded record with the portal's rules (bench/standin_rules.py) unless ``validate_records`` is
    false."""

    def __init__(
        self, env: Mapping[str, str], latency_ms: float, token: str, *, validate_records: bool = True
    ) -> None:
        self.latency_ms = self._started_latency_ms = latency_ms
        self._log = open(LOGS / "standin.log", "ab")  # noqa: SIM115 - closed in stop()
        check = ["--validate-records", STANDIN_RECORD_CHECK] if validate_records else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kwikid_standin", "--port", "0", "--latency-ms", str(latency_ms), *check],
            cwd=ROOT,
            env={**env, "KWIKID_STANDIN_TOKEN": token},
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if " on http" not in line:
            self.stop()
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.url = line.split(" on ", 1)[1].split()[0]
        self.token = token
        if validate_records:
            try:
                self._warm_up()
            except BaseException:
                self.stop()
                raise

    def _warm_up(self) -> None:
        """One upload, then the counters reset: the record check reads the code lists and PIN master on
        its first call, and no measured request should pay for that."""
        from kwikid_standin import UPLOAD_PATH, sample_payload

        request = urllib.request.Request(
            self.url + UPLOAD_PATH,
            data=json.dumps(sample_payload(1)).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=120).close()
        except urllib.error.HTTPError as refused:  # the sample record need not pass the portal's rules
            refused.close()
        self.reset()

    def _call(self, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method="POST" if body else "GET")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/_standin/stats")  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Counters and faults cleared; the latency set with ``set_latency`` kept."""
        self._call("/_standin/reset", b"{}")
        if self.latency_ms != self._started_latency_ms:
            self._call("/_standin/faults", json.dumps({"latency_ms": self.latency_ms}).encode())

    def set_latency(self, latency_ms: float) -> None:
        """Answer every upload after ``latency_ms`` from now on (a fault setting, kept across ``reset``)."""
        self.latency_ms = latency_ms
        self._call("/_standin/faults", json.dumps({"latency_ms": latency_ms}).encode())

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self._log.close()


# --- measuring ----------------------------------------------------------------------------------------


class Stopwatch:
    """``with Stopwatch() as watch: ...``, then ``watch.seconds`` (wall clock, perf_counter)."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.seconds = time.perf_counter() - self._started


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses): index 1
    is the parent's pid, 11 and 12 the process's user and system ticks, 13 and 14 its reaped children's."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process and its live children (a prefork worker's pool processes, and
    theirs) have used so far (0 for a process gone). The worker's pool lives as long as the worker: a
    difference taken across a run covers every process that did its work."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in _children(pid))


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot, whoever used it (/proc/stat: all but
    idle and iowait). A difference across a run counts PostgreSQL's short-lived backends and this process
    too, which no per-process count sees."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    # guest time is already counted in user time
    busy = sum(fields[:8]) - idle - iowait
    return busy / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(backend_pid: int) -> float | None:
    """CPU time the PostgreSQL server has used so far: its postmaster, every live process under it, and the
    backends that have exited (their time is added to the postmaster's when it reaps them). ``backend_pid``
    is any backend's (``SELECT pg_backend_pid()``); None when the server runs on another machine."""
    try:
        postmaster = int(_stat_fields(backend_pid)[1])
        fields = _stat_fields(postmaster)
    except OSError:
        return None
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return cpu_seconds(postmaster) + reaped


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux's /proc/PID/task/TID/children, every thread's)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # the process is gone
    children: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                children += [int(child) for child in listed.read().split()]
        except OSError:
            continue  # this thread ended meanwhile; the others still count
    return children


def memory_kb(pid: int | str = "self") -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process (this one by default), in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


# --- results ------------------------------------------------------------------------------------------


def say(text: str) -> None:
    """A progress line, shown at once."""
    print(text, flush=True)


def run_json(command: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    """Run a child script that ends by printing one JSON line; that line, parsed. On failure, the end of
    its output on stderr and exit."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{Path(command[1]).name} failed with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def write_result(filename: str, text: str) -> Path:
    """Write a benchmark's table to bench/results/``filename``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / filename
    path.write_text(text, encoding="utf-8")
    return path
