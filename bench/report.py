"""The benchmark's table (`make bench`): rows with a figure, a goal and a verdict, as text and as JSON.

Nothing here measures or imports Django: bench/upload_report.py turns a run's figures into ``Row``s, and
this module says whether each goal is met, lays the rows out and writes bench/results/latest.txt and
latest.json (and dated copies). tests/test_bench_report.py covers it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MET = "met"
MISSED = "MISSED"
# A figure measured too small to stand for its goal (an extrapolation from runs far below the goal's size):
# shown with its goal, counted neither met nor missed.
NOT_JUDGED = "not judged"


@dataclass(frozen=True)
class Goal:
    """A bound on a figure: ``at_most`` (value <= limit) or ``at_least`` (value >= limit), with its unit
    as shown ("x", "ms", "MB")."""

    op: str  # "<=", ">=" or "<"
    limit: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">=", "<"):
            raise ValueError(f"unknown goal operator {self.op!r}")

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        return value >= self.limit

    def text(self) -> str:
        return f"{self.op} {_number(self.limit)}{_unit(self.unit)}"


@dataclass(frozen=True)
class Row:
    """One line of the table. A row with a goal gets a verdict; one without is shown for scale only.
    ``value`` is the measured figure in the goal's unit; ``shown`` overrides how it is printed."""

    key: str
    figure: str
    value: float | None
    unit: str = ""
    goal: Goal | None = None
    note: str = ""
    shown: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    judged: bool = True

    @property
    def verdict(self) -> str:
        if self.goal is None or self.value is None:
            return ""
        if not self.judged:
            return NOT_JUDGED
        return MET if self.goal.met(self.value) else MISSED

    @property
    def measured(self) -> str:
        if self.shown:
            return self.shown
        if self.value is None:
            return "-"
        return f"{_number(self.value)}{_unit(self.unit)}"


def _unit(unit: str) -> str:
    return unit if unit in ("x", "") else f" {unit}"


def _number(value: float) -> str:
    if value == int(value) and (value == 0 or abs(value) >= 10):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    """The rows as aligned text: figure, measured, goal, verdict, note; a summary line at the end."""
    cells = [("figure", "measured", "goal", "verdict", "notes")]
    for row in rows:
        goal = row.goal.text() if row.goal else ("for scale" if row.value is not None or row.shown else "")
        cells.append((row.figure, row.measured, goal, row.verdict, row.note))
    widths = [max(len(line[i]) for line in cells) for i in range(4)]
    lines = list(header)
    for line in cells:
        lines.append(
            "  ".join([*(c.ljust(w) for c, w in zip(line[:4], widths, strict=True)), line[4]]).rstrip()
        )
    judged = [row for row in rows if row.verdict in (MET, MISSED)]
    missed = [row.figure for row in judged if row.verdict == MISSED]
    unjudged = [row.figure for row in rows if row.verdict == NOT_JUDGED]
    lines.append(
        f"{len(judged) - len(missed)} of {len(judged)} goals met"
        + (f"; missed: {'; '.join(missed)}" if missed else "")
        + (f"; not judged at these sizes: {'; '.join(unjudged)}" if unjudged else "")
    )
    return "\n".join(lines) + "\n"


def as_json(rows: Sequence[Row], context: dict[str, Any]) -> dict[str, Any]:
    """The figures, goals and verdicts with the run's context (date, commit, cores, load)."""
    return {
        **context,
        "rows": [
            {
                "key": row.key,
                "figure": row.figure,
                "value": row.value,
                "unit": row.unit,
                "measured": row.measured,
                "goal": None if row.goal is None else {**asdict(row.goal), "text": row.goal.text()},
                "verdict": row.verdict or None,
                "note": row.note,
                **({"extra": row.extra} if row.extra else {}),
            }
            for row in rows
        ],
    }


def git_commit(root: Path) -> str:
    """The checked-out commit (with "+changes" when the work tree differs from it), or "unknown"."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def write(results: Path, stamp: str, text: str, data: dict[str, Any]) -> list[Path]:
    """latest.txt and latest.json in ``results``, and copies named by ``stamp`` (e.g. 20261202-1830)."""
    results.mkdir(parents=True, exist_ok=True)
    written = []
    body = json.dumps(data, indent=2) + "\n"
    for name, content in (
        ("latest.txt", text),
        ("latest.json", body),
        (f"bench-{stamp}.txt", text),
        (f"bench-{stamp}.json", body),
    ):
        path = results / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
