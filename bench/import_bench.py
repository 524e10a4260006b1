"""Import benchmark (`make bench-import`): the portal's bulk import against a plain CSV -> regex -> COPY.

1. A CSV of N valid records (default 100,000; bench/seed.py's record generator, the template's columns)
   is imported by the portal (bench/import_child.py: bulkdata.engine.records_import, as
   ``manage.py import_records`` runs it: validation, PII encryption, PAN hashes, duplicate checks against
   the file and the table, records, name tokens and audit events, one transaction) into an empty table.
   In the same run, bench/import_plain.py streams the same file, applies the same regular expressions and
   COPYs the rows into a table of text columns (for scale). "PostgreSQL alone" is the floor: the rows the
   import stored, COPYed back into the same tables (indexes, foreign-key checks at commit) with no Python
   work per row. Goal: the import within 1.5 times PostgreSQL alone.
2. The import process's peak RSS (VmHWM, Django included) for the same file; ``--memory-rows 1000000``
   measures it for a million rows. Goal: < 300 MB for 1,000,000 rows.

Uses its own database, ``ckycportal_bench_import`` (made anew here: migrated, or copied from
``ckycportal_bench_import_migrated``, a migrated copy kept from the last run) on the server of DATABASE_URL
(the Makefile's TEST_ENV), or BENCH_IMPORT_DATABASE_URL. Prints a table and writes it to
bench/results/import-latest.txt.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/import_bench.py`

from bench.harness import (
    LOGS,
    Stopwatch,
    bench_database_url,
    bench_environment,
    clone_database,
    database_name,
    migrated_database,
    run_json,
    write_result,
)

WORK = LOGS
DEFAULT_DB_NAME = "ckycportal_bench_import"
GOAL_FLOOR_RATIO = 1.5
GOAL_PEAK_MB = 300


@functools.cache
def valid_pins() -> dict[str, list[str]]:
    """Up to 200 PINs of the PIN master that validation accepts in each state bench/seed.py's addresses
    use. Validation judges each PIN; only the state's own PINs (through ``State.pin_master_name``) are put
    to it, and no more once 200 pass: judging all 20,000 PINs for each state took 7 s."""
    from django.utils import timezone

    from bench.seed import _CITIES, plain_record
    from codelists.models import PinCode, State
    from codelists.selectors import code_book
    from records.validation import validate_record

    codes, today = code_book(), timezone.localdate()
    record = plain_record(0, "PIN")
    found: dict[str, list[str]] = {}
    for state in sorted({state for _city, state, _pin in _CITIES}):
        master_name = State.objects.filter(code=state).values_list("pin_master_name", flat=True).first()
        candidates = (
            PinCode.objects.filter(state_name__iexact=master_name) if master_name else PinCode.objects
        )
        pins = candidates.order_by("pin").values_list("pin", flat=True).distinct()
        accepted = (
            pin
            for pin in pins
            if not any(
                p.field == "poa_pin_code"
                for p in validate_record(
                    {**record, "poa_state": state, "poa_pin_code": pin},
                    complete=True,
                    today=today,
                    codes=codes,
                )
            )
        )
        found[state] = list(itertools.islice(accepted, 200))
        assert found[state], f"no PIN of the PIN master validates in {state}"
    return found


def write_csv(path: Path, count: int, prefix: str) -> float:
    """N distinct valid records as a maker's spreadsheet would hold them (dates ISO, flags Y/N), with PINs
    from the PIN master."""
    from bench.seed import plain_record
    from records.validation import FIELDS

    pins = valid_pins()
    started = time.perf_counter()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for i in range(count):
            record = plain_record(i, prefix)
            for state, pin in (("poa_state", "poa_pin_code"), ("current_state", "current_pin_code")):
                if record[pin]:
                    choices = pins[record[state]]
                    record[pin] = choices[i % len(choices)]
            writer.writerow(
                [
                    ("Y" if value else "N")
                    if isinstance(value, bool)
                    else (value.isoformat() if isinstance(value, date) else ("" if value is None else value))
                    for value in (record[name] for name in FIELDS)
                ]
            )
    return time.perf_counter() - started


def prepare_portal(env: dict[str, str], template: str | None = None) -> None:
    """Make the bench database (migrated, or a copy of the migrated database ``template``: harness's
    ``migrated_database`` keeps a migrated copy between runs) and create an institution, a branch and a
    maker in it. Sets Django up in this process, on ``env`` (already in ``os.environ``)."""
    if template:
        clone_database(env["DATABASE_URL"], template)
    else:
        migrated_database(env["DATABASE_URL"], env)
    import django

    django.setup()
    from django.db import connection

    from institutions.models import Branch, Institution, Role, User

    institution = Institution.objects.create(
        name="Bench",
        fi_code="BENCH1",
        region_code="MH",
        cersai_username="B",
        api_base_url="http://127.0.0.1:9",
    )
    branch = Branch.objects.create(institution=institution, code="BR1", name="Bench branch")
    maker = User.objects.create_user(username="bench-maker", password=None, role=Role.MAKER)
    maker.branches.add(branch)
    connection.close()  # the children that import hold their own


FLOOR_TABLES = ("records_kycrecord", "records_recordnametoken", "records_recordevent")


def postgres_alone(env: dict[str, str]) -> float:
    """Seconds PostgreSQL alone takes to store what the import stored: its rows (already encrypted and
    hashed) copied out, the tables emptied, and COPYed back into the same tables in one transaction, with
    their indexes, and the foreign-key checks at commit. No Python work per row: the import's floor."""
    import psycopg

    files = {table: WORK / f"floor-{table}.copy" for table in FLOOR_TABLES}
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        for table, path in files.items():
            with path.open("wb") as out, conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                for data in copy:
                    out.write(data)
    truncate_records(env)
    with psycopg.connect(env["DATABASE_URL"]) as conn, Stopwatch() as watch, conn.transaction():
        for table, path in files.items():
            with path.open("rb") as f, conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                while data := f.read(1 << 20):
                    copy.write(data)
    for path in files.values():
        path.unlink()
    return watch.seconds


def truncate_records(env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("TRUNCATE records_kycrecord CASCADE")
        conn.execute("VACUUM ANALYZE records_kycrecord")


def import_cpu_note(run: dict[str, float | None], floor_s: float, cores: int) -> str:
    """What the import's CPU allows: its processes' and PostgreSQL's CPU, the whole machine's busy time, and
    the best ratio to PostgreSQL alone that busy time allows on these cores (the least wall time is the
    busy time spread over every core)."""
    least = (run["cpu_machine"] or 0.0) / cores
    postgres = f"PostgreSQL {run['cpu_postgres']:.1f} s, " if run.get("cpu_postgres") is not None else ""
    return (
        f"its processes {run['cpu_import']:.1f} s, {postgres}the machine busy {run['cpu_machine']:.1f} s of "
        f"{run['seconds'] * cores:.1f} s its {cores} cores had: at best {least / floor_s:.2f}x PostgreSQL "
        "alone with that CPU"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the throughput comparison")
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="also import this many rows for peak memory (e.g. 1000000)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for `make bench`)")
    parser.add_argument("--template", help="copy this migrated database instead of migrating (`make bench`)")
    args = parser.parse_args()
    env = bench_environment(bench_database_url("BENCH_IMPORT_DATABASE_URL", DEFAULT_DB_NAME, "bench-import"))
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)  # bench.seed and records.validation import Django settings

    print(f"Preparing database {database_name(env['DATABASE_URL'])} ...", flush=True)
    prepare_portal(env, args.template)  # Django set up here
    path = WORK / f"import-{args.rows}.csv"
    made = write_csv(path, args.rows, "BI")
    size_mb = path.stat().st_size / 1024 / 1024
    print(f"Wrote {args.rows:,} rows ({size_mb:.1f} MB) in {made:.1f} s; importing ...", flush=True)

    plain = run_json([sys.executable, "bench/import_plain.py", str(path), env["DATABASE_URL"]], env)
    child = [sys.executable, "bench/import_child.py", str(path), "BR1", "bench-maker"]
    check = run_json([*child, "--check-only"], env)
    portal = run_json(child, env)
    assert portal["created"] == args.rows, portal
    floor = postgres_alone(env)
    plain_rate = plain["rows"] / plain["seconds"]
    portal_rate = portal["rows"] / portal["seconds"]
    check_rate = check["rows"] / check["seconds"]
    ratio = portal_rate / plain_rate
    over_floor = portal["seconds"] / floor
    lines = [
        f"Import benchmark, {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()})",
        f"file: {args.rows:,} rows, {size_mb:.1f} MB CSV",
        f"plain CSV -> regex -> COPY : {plain['seconds']:7.1f} s  {plain_rate:9,.0f} rows/s",
        f"portal import              : {portal['seconds']:7.1f} s  {portal_rate:9,.0f} rows/s "
        "(validation, encryption, duplicates, records, name tokens, audit events)",
        f"portal check only          : {check['seconds']:7.1f} s  {check_rate:9,.0f} rows/s "
        "(the dry run: reading, cleaning, validation, duplicate checks; no writes)",
        f"ratio portal / plain       : {ratio:.2f}x   (for scale)",
        f"PostgreSQL alone           : {floor:7.1f} s  (the import's rows, already encrypted, COPYed into "
        f"the same tables: indexes, foreign keys at commit; at best {plain['seconds'] / floor:.2f}x)",
        f"portal / PostgreSQL alone  : {over_floor:.2f}x   "
        f"(goal <= {GOAL_FLOOR_RATIO}x: {'met' if over_floor <= GOAL_FLOOR_RATIO else 'MISSED'})",
        f"CPU of the import          : {import_cpu_note(portal, floor, os.cpu_count() or 1)}",
        f"import process peak RSS    : {portal['peak_kb'] / 1024:.0f} MB for {args.rows:,} rows "
        f"(Django loaded: {portal['peak_kb_before'] / 1024:.0f} MB; each worker at most "
        f"{portal['workers_peak_kb'] / 1024:.0f} MB, mostly pages shared with it)",
    ]
    figures = {
        "rows": args.rows,
        "plain_s": plain["seconds"],
        "portal_s": portal["seconds"],
        "check_s": check["seconds"],
        "floor_s": floor,
        "cpu_import": portal["cpu_import"],
        "cpu_postgres": portal["cpu_postgres"],
        "cpu_machine": portal["cpu_machine"],
        "cores": os.cpu_count() or 1,
        "peak_mb": portal["peak_kb"] / 1024,
        "memory_rows": args.rows,
        "memory_peak_mb": portal["peak_kb"] / 1024,
        "memory_before_mb": portal["peak_kb_before"] / 1024,
    }
    if args.memory_rows:
        print(f"Memory run: {args.memory_rows:,} rows ...", flush=True)
        truncate_records(env)
        big = WORK / f"import-{args.memory_rows}.csv"
        write_csv(big, args.memory_rows, "BM")
        memory = run_json([sys.executable, "bench/import_child.py", str(big), "BR1", "bench-maker"], env)
        peak_mb = memory["peak_kb"] / 1024
        lines.append(
            f"import process peak RSS    : {peak_mb:.0f} MB for {args.memory_rows:,} rows in "
            f"{memory['seconds']:.0f} s "
            f"(goal < {GOAL_PEAK_MB} MB: {'met' if peak_mb < GOAL_PEAK_MB else 'NOT met'}; each worker at "
            f"most {memory['workers_peak_kb'] / 1024:.0f} MB)"
        )
        big.unlink()
        figures.update(
            memory_rows=args.memory_rows,
            memory_peak_mb=peak_mb,
            memory_before_mb=memory["peak_kb_before"] / 1024,
            memory_s=memory["seconds"],
        )
    path.unlink()
    if args.json:
        args.json.write_text(json.dumps(figures), encoding="utf-8")
    report = "\n".join(lines)
    print(report)
    write_result("import-latest.txt", report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
