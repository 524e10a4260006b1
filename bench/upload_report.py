"""The rows of `make bench`'s table from a run's figures (bench/run.py's ``results``): the goals,
each with its verdict, and a few figures for scale. Laying out and writing is bench/report.py's.

Definitions (also in the rows' notes):
- the worker's own time per batch = (one solo worker's wall time, from the assemble task to the last
  batch accepted, minus the seconds the stand-in spent answering its requests, as the stand-in timed them)
  / the number of requests. It holds everything the worker does per batch (dispatch and prefetch, the
  claim, the attempt row, status moves, commits, connections, building the client and the body, the HTTP
  round trip on the loopback) and nothing of KwikID's own work (reading, checking, accepting the records).
- the upload path vs its SQL alone = that same worker time of its own / the SQL alone (FLOOR_PROCEDURE) on
  the same records and batch size.
- the import vs PostgreSQL alone = the portal's import time / the time PostgreSQL takes to COPY the very
  rows the import stored back into the same tables (bench/import_bench.py's floor).
"""

from __future__ import annotations

from typing import Any

from bench.report import Goal, Row

MILLION = 1_000_000


def _ms(seconds: float) -> float:
    return seconds * 1000


# The memory rows extend a line to a million: from runs smaller than this (more than 20 times short), the
# start-up allocations that steepen a small run's line decide the figure, so it is shown and not judged.
JUDGED_FROM = 50_000


def to_a_million(first: tuple[int, float], second: tuple[int, float], what: str) -> tuple[float, str, bool]:
    """Peak memory at 1,000,000 from two runs (size, peak MB), the second the larger: measured if it is a
    million or more, else extended along the line through both (never below the larger run's peak). Also
    whether the figure can be judged: the larger run at least JUDGED_FROM."""
    (n1, mb1), (n2, mb2) = first, second
    if n2 >= MILLION:
        return mb2, f"measured at {n2:,} {what}", True
    slope = (mb2 - mb1) / (n2 - n1) if n2 > n1 else 0.0
    value = mb2 + max(slope, 0.0) * (MILLION - n2)
    judged = n2 >= JUDGED_FROM
    caution = "; runs this small overstate it (start-up allocations steepen the line)" if n2 < 100_000 else ""
    if not judged:
        caution = f"; not judged: runs under {JUDGED_FROM:,} {what} are too small to extend to a million"
    how = f"extrapolated linearly through {n1:,} {what} ({mb1:.0f} MB) and {n2:,} ({mb2:.0f} MB){caution}"
    return value, f"{how}; --full measures 1,000,000", judged


def _import_cpu(imp: dict[str, Any]) -> str:
    """The CPU the import used and the best ratio that CPU allows on these cores (its least wall time is
    the machine's busy time spread over every core)."""
    if imp.get("cpu_machine") is None:
        return ""
    cores = imp["cores"]
    postgres = f", PostgreSQL {imp['cpu_postgres']:.1f} s" if imp.get("cpu_postgres") is not None else ""
    best = imp["cpu_machine"] / cores / imp["floor_s"]
    return (
        f"; CPU used: the import's processes {imp['cpu_import']:.1f} s{postgres}, the whole machine "
        f"{imp['cpu_machine']:.1f} s, so at best {best:.2f}x on {cores} cores"
    )


def _registry_cpu(reg: dict[str, Any]) -> str:
    """The CPU the checking pass used per record (the worker's, PostgreSQL's, the stand-in's, the whole
    machine's), against the machine's per search in the plain loop, and the best ratio the pass's CPU
    allows on these cores (its least wall time is the machine's busy time spread over every core)."""
    if "cpu_machine" not in reg:
        return ""
    n, cores = reg["records"], reg["cores"]
    postgres = f", PostgreSQL {_ms(reg['cpu_postgres']) / n:.2f}" if "cpu_postgres" in reg else ""
    best = reg["plain_s"] / (reg["cpu_machine"] / cores)
    return (
        f"; CPU per record in ms: worker {_ms(reg['cpu_worker']) / n:.2f}{postgres}, stand-in "
        f"{_ms(reg['cpu_standin']) / n:.2f}, the whole machine {_ms(reg['cpu_machine']) / n:.2f} (the loop: "
        f"{_ms(reg['plain_cpu_machine']) / n:.2f} with its start); so at best {best:.2f}x on {cores} cores"
    )


def _assembly_share(run: dict[str, Any]) -> str:
    """How much of a batch's own time its assembly took: the assemble task's runs, as the worker's log
    times them (a bounded number of batches a run, each run queued behind the sends it made)."""
    if "assembly_seconds" not in run:
        return ""
    return (
        f"; assembling {_ms(run['assembly_seconds']) / run['requests']:.1f} ms a batch "
        f"({run['assembly_runs']} assemble runs), the rest sending"
    )


def _machine_busy(run: dict[str, Any], cores: int, baseline: float) -> str:
    """The whole machine's busy CPU over a run (PostgreSQL included), of what its cores had, and the most
    the run could have gained over ``baseline`` seconds had that CPU been spread perfectly on every core."""
    if "cpu_machine" not in run:
        return ""
    bound = baseline / (run["cpu_machine"] / cores) if run["cpu_machine"] else float("inf")
    postgres = f" {run['cpu_postgres']:.1f} s" if "cpu_postgres" in run else ""
    return (
        f"; the machine busy {run['cpu_machine']:.1f} s of {run['seconds'] * cores:.1f} s its {cores} cores "
        f"had (PostgreSQL{postgres} and all), so at most {bound:.2f}x with that CPU"
    )


def rows_from_results(r: dict[str, Any], args: Any) -> list[Row]:
    rows: list[Row] = []
    lat = r.get("latency")
    if lat:
        script = min(lat["script_runs"])
        one, doc = lat["one"], lat["documented"]
        base = (
            f"{lat['records']:,} records, batches of {lat['batch']}, KwikID {lat['latency_ms']:g} ms + its "
            f"record checks; script {script:.2f} s (runs "
            + ", ".join(f"{s:.2f}" for s in lat["script_runs"])
            + ")"
        )
        rows.append(
            Row(
                "latency_one_worker",
                f"KwikID at {lat['latency_ms']:g} ms: one worker process (concurrency 1) / sequential script",
                one["seconds"] / script,
                "x",
                Goal("<=", 1.15, "x"),
                f"{base}; worker {one['seconds']:.2f} s",
            )
        )
        rows.append(
            Row(
                "latency_documented_worker",
                f"KwikID at {lat['latency_ms']:g} ms: documented worker (concurrency 4), times faster than "
                "the script",
                script / doc["seconds"],
                "x",
                Goal(">=", 3.3, "x"),
                f"docker-compose.yml's command (prefork, --concurrency=4 --prefetch-multiplier=1): "
                f"{doc['seconds']:.2f} s vs script {script:.2f} s; CPU used: workers "
                f"{doc['cpu_workers']:.1f} s, stand-in {doc['cpu_standin']:.1f} s"
                + _machine_busy(doc, r.get("cores") or 1, script),
            )
        )
    sizes = sorted(int(key.split("_")[1]) for key in r if key.startswith("overhead_"))
    for size in sizes:
        run = r[f"overhead_{size}"]
        own = run["seconds"] - run["service_s"]
        per_batch = _ms(own) / run["requests"]
        rows.append(
            Row(
                f"own_time_per_batch_{size}",
                f"the worker's own time per batch of {size:,}, KwikID answering at once",
                per_batch,
                "ms",
                Goal("<=", 15, "ms") if size == 100 else None,
                f"(wall {run['seconds']:.2f} s - KwikID's answers {run['service_s']:.2f} s, as the stand-in "
                f"timed them) / {run['requests']} requests; {run['records']:,} records; worker CPU "
                f"{_ms(run['cpu_workers']) / run['requests']:.1f} ms a batch"
                + (
                    f", PostgreSQL's {_ms(run['cpu_postgres']) / run['requests']:.1f} ms"
                    if "cpu_postgres" in run
                    else ""
                )
                + _assembly_share(run)
                + ("" if size == 100 else "; goal is for batches of 100"),
            )
        )
        rows.append(
            Row(
                f"bare_loop_ratio_{size}",
                f"  for scale: one worker / bare requests loop, 0 ms, batches of {size:,}",
                run["seconds"] / run["plain_s"],
                "x",
                None,
                f"retired goal (<= 1.5x); loop {run['plain_s']:.2f} s of which KwikID "
                f"{run['plain_service_s']:.2f} s"
                + ("" if run.get("same_bodies", True) else "; (!) the last bodies differed"),
            )
        )
    floor = r.get("floor")
    if floor:
        run = r.get(f"overhead_{floor['batch']}")
        if run and run["records"] == floor["records"]:
            own = run["seconds"] - run["service_s"]
            rows.append(
                Row(
                    "upload_vs_sql_floor",
                    f"the upload path / its SQL alone (batches of {floor['batch']})",
                    own / floor["seconds"],
                    "x",
                    Goal("<=", 1.5, "x"),
                    f"worker's own {own:.2f} s (wall {run['seconds']:.2f} s) vs SQL alone "
                    f"{floor['seconds']:.2f} s, "
                    f"{floor['records']:,} records",
                )
            )
            rows.append(
                Row(
                    f"sql_floor_per_batch_{floor['batch']}",
                    f"  for scale: the SQL alone per batch of {floor['batch']:,} (no Python, no broker)",
                    _ms(floor["seconds"]) / run["requests"],
                    "ms",
                    None,
                    "what the database needs per batch whatever the worker does: the bound under the "
                    "worker's own time",
                )
            )
        else:
            rows.append(
                Row(
                    "sql_floor",
                    f"  the upload path's SQL alone, {floor['records']:,} records",
                    floor["seconds"],
                    "s",
                    None,
                    "no worker run on the same records to compare with",
                )
            )
    imp = r.get("import")
    if imp:
        rows.append(
            Row(
                "import_vs_postgres",
                "the import / PostgreSQL alone storing the same rows",
                imp["portal_s"] / imp["floor_s"],
                "x",
                Goal("<=", 1.5, "x"),
                f"{imp['rows']:,} rows: import {imp['portal_s']:.1f} s, PostgreSQL alone "
                f"{imp['floor_s']:.1f} s "
                f"(COPY of the stored rows into the same tables)" + _import_cpu(imp),
            )
        )
        rows.append(
            Row(
                "import_vs_plain_copy",
                "  for scale: import throughput / plain CSV -> regex -> COPY",
                imp["plain_s"] / imp["portal_s"],
                "x",
                None,
                f"retired goal (>= 0.2x); plain script {imp['plain_s']:.1f} s",
            )
        )
    if "scale_1" in r:
        one, many = r["scale_1"], r[f"scale_{args.workers}"]
        cores = r.get("cores") or 1
        # The machine's CPU where measured (PostgreSQL's backends too), else the worker's and stand-in's.
        many_cpu = many.get("cpu_machine", many["cpu_workers"] + many["cpu_standin"])
        bound = one["seconds"] / max(many_cpu / cores, one["seconds"] / args.workers)
        rows.append(
            Row(
                "scaling",
                f"{args.workers} workers vs 1 at {args.latency_ms:g} ms",
                one["seconds"] / many["seconds"],
                "x",
                Goal(">=", 3.5, "x"),
                f"{one['records']:,} records, {one['batches']} requests of {args.batch_size}: "
                f"{one['seconds']:.2f} s vs {many['seconds']:.2f} s; at most {bound:.2f}x on {cores} cores "
                f"(CPU used: workers {many['cpu_workers']:.1f} s, stand-in {many['cpu_standin']:.1f} s"
                + (f", the whole machine {many['cpu_machine']:.1f} s)" if "cpu_machine" in many else ")"),
            )
        )
    if "memory" in r:
        mem, small = r["memory"], r.get("memory_small")
        value, how, judged = to_a_million(
            (small["records"], small["peak_mb"]) if small else (0, r["memory"]["idle_mb"]),
            (mem["records"], mem["peak_mb"]),
            "records",
        )
        rows.append(
            Row(
                "memory_worker",
                "memory: the worker at 1,000,000 records",
                value,
                "MB",
                Goal("<", 250, "MB"),
                f"{how}; peak RSS (VmHWM)",
                judged=judged,
            )
        )
    if imp:
        value, how, judged = to_a_million(
            (imp["rows"], imp["peak_mb"]), (imp["memory_rows"], imp["memory_peak_mb"]), "rows"
        )
        rows.append(
            Row(
                "memory_import",
                "memory: the import at 1,000,000 rows",
                value,
                "MB",
                Goal("<", 300, "MB"),
                f"{how}; the import process's peak RSS (its row workers share its pages)",
                judged=judged,
            )
        )
    reg = r.get("registry")
    if reg:
        rows.append(
            Row(
                "registry_vs_plain",
                "registry check throughput, 1 worker / plain search loop",
                reg["plain_s"] / reg["seconds"],
                "x",
                Goal(">=", 0.8, "x"),
                f"{reg['records']:,} records: worker {reg['seconds']:.2f} s, loop {reg['plain_s']:.2f} s, "
                f"{reg['passes']} passes" + _registry_cpu(reg),
            )
        )
        rows.append(
            Row(
                "registry_memory",
                "registry worker peak RSS",
                reg["peak_mb"],
                "MB",
                Goal("<", 250, "MB"),
                f"{reg['records']:,} records (idle {reg['idle_mb']:.0f} MB)",
            )
        )
    slow = r.get("registry_latency")
    if slow:
        rows.append(
            Row(
                "registry_latency",
                f"  for scale: registry / plain loop, {slow['latency_ms']:g} ms a search, throughput",
                slow["plain_s"] / slow["seconds"],
                "x",
                None,
                f"{slow['records']:,} records; the searches of a batch overlap",
            )
        )
    api = r.get("api")
    if api:
        rows.append(
            Row(
                "api_vs_import",
                "API throughput, one client / the bulk import",
                api["import_s"] / api["sequential_s"],
                "x",
                Goal(">=", 0.8, "x"),
                f"{api['rows']:,} records, requests of {api['per_request']:,}: API "
                f"{api['sequential_s']:.1f} s, "
                f"import {api['import_s']:.1f} s",
            )
        )
        rows.append(
            Row(
                "api_concurrent_5xx",
                f"API, {api['clients']} clients at once: 5xx answers",
                api["errors_5xx"],
                "",
                Goal("<=", 0),
                f"answers {api['answers']}; {api['concurrent_s']:.1f} s",
            )
        )
    return rows
