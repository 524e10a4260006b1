"""Where a profiled worker's time went, per batch: a py-spy raw profile (``--profile py-spy``) folded into
the portal's own steps and what each was doing.

    python bench/profile_summary.py bench/results/profile-overhead-100-py-spy.txt --batches 50 [--rate 250]

Each sample (one stack, py-spy ``--idle`` so waiting counts) is put under the innermost frame of the
portal's code (uploads/, records/, kwikid/, ...; else the Celery task machinery or the worker's idle loop)
and under what its innermost frame was doing: waiting on PostgreSQL, on KwikID (HTTP), on Redis,
connecting, or running Python. Prints milliseconds per batch, largest first.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

PORTAL = ("uploads/", "records/", "kwikid/", "institutions/", "codelists/", "ckycportal/", "registry/")
IDLE = "idle: waiting for a task message"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for part in stack.split(";"):
        match = _FRAME.match(part.strip())
        if match:
            frames.append((match["func"], match["file"]))
    return frames


def activity(frames: list[tuple[str, str]]) -> str:
    """What the innermost frames were doing."""
    inner = frames[-14:]
    funcs = [func for func, _file in inner]
    files = [file for _func, file in inner]
    if any(f.startswith("psycopg/") for f in files):
        if any(fn in ("connect", "Connection.connect", "_connect_gen", "connect_gen") for fn in funcs):
            return "PostgreSQL: connecting"
        if not funcs[-1].startswith("Connection.wait"):
            return "Python: psycopg (parameters, results)"
        if "Connection.commit" in funcs:
            return "PostgreSQL: waiting on COMMIT"
        if "DatabaseWrapper.is_usable" in funcs:
            return "PostgreSQL: connection health check"
        return "PostgreSQL: waiting on a statement"
    if any(f.startswith(("urllib3/", "requests/", "http/client")) for f in files):
        if funcs[-1].startswith(("SocketIO.readinto", "socket.recv", "_readinto")) or "readinto" in funcs[-1]:
            return "KwikID: waiting for the answer"
        return "Python: HTTP client"
    if any(f.startswith("redis/") for f in files):
        return "Redis"
    if any("eventio.py" in f for f in files):
        return IDLE
    if any(f.startswith("django/db/models") for f in files):
        return "Python: Django ORM (building queries, rows)"
    return "Python: other"


def step(frames: list[tuple[str, str]]) -> str:
    """The innermost frame of the portal's code, else the Celery layer the sample was in."""
    for func, file in reversed(frames):
        if file.startswith(PORTAL):
            return f"{file.split('/')[0]}.{func}"
    files = [file for _func, file in frames]
    if any(f.startswith("celery/app/trace") for f in files):
        return "celery: running a task (trace, signals, result)"
    if any(f.startswith(("kombu/", "celery/worker")) for f in files):
        return "celery: consumer loop (receive, dispatch, ack)"
    return "other"


def summarise(path: Path) -> tuple[Counter[tuple[str, str]], Counter[str], int]:
    by_step: Counter[tuple[str, str]] = Counter()
    by_activity: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        what = activity(frames)
        by_step[(step(frames), what)] += n
        by_activity[what] += n
        total += n
    return by_step, by_activity, total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--batches", type=int, required=True, help="batches the profiled run sent")
    parser.add_argument("--rate", type=float, default=250, help="py-spy's samples per second (default 250)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    by_step, by_activity, total = summarise(args.profile)

    def ms(samples: int) -> str:
        return f"{samples / args.rate * 1000 / args.batches:8.1f} ms"

    # The profiler starts a second before the first task and stops after the bench has seen the last batch
    # accepted: a raw profile has no order, so idle samples cannot be split into before, between and after.
    # Compare the rest with the bench's own time per batch; idle is shown apart, as a bound.
    idle = by_activity.pop(IDLE, 0)
    working = total - idle
    print(f"{total} samples, {total / args.rate:.1f} s; per batch of {args.batches} batches:")
    print(f"{ms(working)}  working (everything but waiting for a task message)")
    for what, n in by_activity.most_common():
        print(f"  {ms(n)}  {what}")
    print(f"{ms(idle)}  {IDLE} (at most: with the lead-in before the first task and the tail after the last)")
    print()
    for (where, what), n in by_step.most_common(args.top):
        if what != IDLE:
            print(f"{ms(n)}  {where:<55} {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
