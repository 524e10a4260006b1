"""The upload benchmark's table (`make bench`): the figures bench/upload_scenarios.py recorded, with
each goal and whether it is met."""

from __future__ import annotations

import argparse
import os
import platform
import time

from bench.upload_scenarios import Bench


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
                "bench/upload_scenarios.py FLOOR_PROCEDURE: the statements of assembling and sending, "
                "same commits",
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
    if "registry" in r:
        reg = r["registry"]
        ratio = (reg["records"] / reg["seconds"]) / (reg["records"] / reg["plain_s"])
        rows += [
            (
                f"registry check, 1 worker, {reg['records']:,} records",
                f"{reg['seconds']:.2f} s",
                f"{reg['rate']:,.0f} searches/s",
                f"{reg['passes']} passes; worker CPU {reg['cpu_worker']:.1f} s",
            ),
            (
                "plain search loop",
                f"{reg['plain_s']:.2f} s",
                f"{reg['records'] / reg['plain_s']:,.0f} searches/s",
                "",
            ),
            ("registry throughput / plain", f"{ratio:.2f}x", "goal >= 0.8x", verdict(ratio >= 0.8)),
            (
                "  registry worker peak RSS",
                f"{reg['peak_mb']:.0f} MB",
                "goal < 250 MB",
                verdict(reg["peak_mb"] < 250) + f" (idle {reg['idle_mb']:.0f} MB)",
            ),
        ]
    if "registry_latency" in r:
        slow = r["registry_latency"]
        speed = slow["plain_s"] / slow["seconds"]
        rows += [
            (
                f"registry check, {slow['latency_ms']:g} ms a search, {slow['records']:,} records",
                f"{slow['seconds']:.2f} s",
                f"{slow['rate']:,.0f} searches/s",
                f"plain loop {slow['plain_s']:.2f} s ({slow['records'] / slow['plain_s']:,.0f}/s)",
            ),
            ("  registry / plain, throughput", f"{speed:.2f}x", "", "the searches of a batch overlap"),
        ]
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
