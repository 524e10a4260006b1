"""API benchmark (`make bench-api`): records pushed through POST /api/v1/records/ against the bulk import.

1. N valid records (default 100,000; the import benchmark's CSV) are imported by the portal's bulk import
   (bench/import_child.py, as ``manage.py import_records``). In the same run, after the records are
   removed, the same records are sent as KwikID-shaped record objects in 1,000-record requests by one
   client, one request after another, to the portal served by gunicorn. Goal: the API's throughput
   >= 0.8x the import's. The request bodies are built beforehand, outside the timing.
2. The same records again, removed first, sent by ten clients at once (each its own token and thread):
   no answer may be a 500.

Uses its own database, ``ckycportal_bench_api`` (made anew here: migrated, or copied from
``ckycportal_bench_api_migrated``, a migrated copy kept from the last run), on the server of DATABASE_URL
(the Makefile's TEST_ENV), or BENCH_API_DATABASE_URL. Prints a table and writes it to
bench/results/api-latest.txt.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/api_bench.py`

from bench.harness import (
    LOGS,
    ROOT,
    Stopwatch,
    bench_database_url,
    bench_environment,
    database_name,
    run_json,
    say,
    write_result,
)
from bench.import_bench import prepare_portal, truncate_records, write_csv

DEFAULT_DB_NAME = "ckycportal_bench_api"
GOAL_RATIO = 0.8
CLIENTS = 10
PER_REQUEST = 1000


def make_clients(count: int) -> list[str]:
    """``count`` API clients at the bench branch, each acting as its own maker; their tokens."""
    from api.models import ApiClient
    from api.tokens import new_token, token_hash, token_prefix
    from institutions.models import Branch, Role, User

    branch = Branch.objects.get(code="BR1")
    tokens = []
    for n in range(count):
        user = User.objects.create_user(username=f"api-bench-{n}", password=None, role=Role.MAKER)
        user.branches.add(branch)
        token = new_token()
        client = ApiClient.objects.create(
            name=f"bench-{n}",
            institution=branch.institution,
            user=user,
            token_hash=token_hash(token),
            token_prefix=token_prefix(token),
            rate_limit_per_minute=100000,
        )
        client.branches.add(branch)
        tokens.append(token)
    return tokens


def request_bodies(path: Path) -> list[bytes]:
    """The CSV's records as KwikID record objects, 1,000 to a request body, serialised beforehand."""
    from kwikid.fields import DATE_FIELDS
    from kwikid.payload import record_to_payload

    bodies: list[bytes] = []
    chunk: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            data: dict[str, Any] = dict(row)
            for name in DATE_FIELDS:
                data[name] = date.fromisoformat(row[name]) if row[name] else None
            data["differently_abled_flag"] = row["differently_abled_flag"] == "Y"
            percentage = row["impairment_percentage"]
            data["impairment_percentage"] = int(percentage) if percentage else None
            chunk.append(record_to_payload(data))
            if len(chunk) == PER_REQUEST:
                bodies.append(json.dumps({"branch_code": "BR1", "records": chunk}).encode())
                chunk = []
    if chunk:
        bodies.append(json.dumps({"branch_code": "BR1", "records": chunk}).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    log = (LOGS / "api-bench-gunicorn.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers),
            "--timeout", "300", "ckycportal.wsgi:application",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    import requests

    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
                return server
        except requests.RequestException:  # not listening yet, or busy starting
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz")


def send(url: str, token: str, bodies: list[bytes], statuses: Counter[int]) -> None:
    import requests

    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        for body in bodies:
            response = session.post(url, data=body, timeout=(5, 300))
            statuses[response.status_code] += 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--web-workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers")
    parser.add_argument("--quick", action="store_true", help="5,000 records: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for `make bench`)")
    parser.add_argument("--template", help="copy this migrated database instead of migrating (`make bench`)")
    args, _ = parser.parse_known_args()  # `make bench` passes the upload benchmark's arguments too
    if args.quick:
        args.rows = min(args.rows, 5_000)
    env = bench_environment(bench_database_url("BENCH_API_DATABASE_URL", DEFAULT_DB_NAME, "bench-api"))
    LOGS.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)

    say(f"Preparing database {database_name(env['DATABASE_URL'])} ...")
    prepare_portal(env, args.template)  # Django set up here
    tokens = make_clients(CLIENTS)
    path = LOGS / f"api-{args.rows}.csv"
    write_csv(path, args.rows, "BA")
    bodies = request_bodies(path)
    say(f"{args.rows:,} records in {len(bodies)} request bodies; importing ...")
    child = [sys.executable, "bench/import_child.py", str(path), "BR1", "bench-maker"]
    imported = run_json(child, env)
    assert imported["created"] == args.rows, imported
    truncate_records(env)

    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/records/"
    server = start_server(env, port, args.web_workers)
    try:
        say("One client, one request after another ...")
        one: Counter[int] = Counter()
        with Stopwatch() as sequential:
            send(url, tokens[0], bodies, one)
        truncate_records(env)
        say(f"{CLIENTS} clients at once ...")
        many: Counter[int] = Counter()
        threads = [
            threading.Thread(target=send, args=(url, tokens[n], bodies[n::CLIENTS], many))
            for n in range(CLIENTS)
        ]
        with Stopwatch() as concurrent:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        server.terminate()
        server.wait(30)
    path.unlink()

    import_rate = imported["rows"] / imported["seconds"]
    api_rate = args.rows / sequential.seconds
    many_rate = args.rows / concurrent.seconds
    ratio = api_rate / import_rate
    errors = sum(count for status, count in many.items() if status >= 500)
    lines = [
        f"API benchmark, {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}, gunicorn workers: {args.web_workers})",
        f"bulk import                 : {imported['seconds']:7.1f} s  {import_rate:9,.0f} records/s",
        f"API, one client             : {sequential.seconds:7.1f} s  {api_rate:9,.0f} records/s "
        f"({len(bodies)} requests of {PER_REQUEST:,}; answers {dict(one)})",
        f"ratio API / import          : {ratio:.2f}x   (goal >= {GOAL_RATIO}x: "
        f"{'met' if ratio >= GOAL_RATIO else 'NOT met'})",
        f"API, {CLIENTS} clients at once     : {concurrent.seconds:7.1f} s  {many_rate:9,.0f} records/s "
        f"(answers {dict(many)}; 5xx: {errors}, goal 0: {'met' if errors == 0 else 'NOT met'})",
    ]
    if args.json:
        figures = {
            "rows": args.rows,
            "per_request": PER_REQUEST,
            "import_s": imported["seconds"],
            "sequential_s": sequential.seconds,
            "concurrent_s": concurrent.seconds,
            "clients": CLIENTS,
            "errors_5xx": errors,
            "answers": {str(status): count for status, count in sorted(many.items())},
        }
        args.json.write_text(json.dumps(figures), encoding="utf-8")
    report = "\n".join(lines)
    print(report)
    write_result("api-latest.txt", report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
