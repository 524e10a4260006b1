"""`make audit`: known advisories against the installed (pinned) dependencies, with pip-audit.

Runs ``pip-audit --local --format json`` in this environment and reads its answer:
- a dependency with a known advisory fails the run (exit 1), naming the advisory and the fixed version;
- a dependency the advisory service could not answer for (no network, a package it does not know) is
  listed as not audited, and does not fail the run: an unreachable registry is not a vulnerability.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any


def verdict(report: Mapping[str, Any]) -> tuple[int, list[str]]:
    """The exit code and the lines to print for pip-audit's JSON report."""
    vulnerable, skipped, audited = [], [], 0
    for dependency in report.get("dependencies", []):
        name = dependency.get("name", "?")
        if "skip_reason" in dependency:
            skipped.append(name)
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
            vulnerable.append(
                f"{name} {dependency.get('version', '')}: {vuln.get('id', '?')} (fixed in {fixed})"
            )
    lines = [f"Audited {audited} dependencies against known advisories."]
    if skipped:
        lines.append(
            f"Not audited ({len(skipped)}): the advisory service did not answer for them "
            f"(no network, or a package it does not know): {', '.join(sorted(skipped))}"
        )
    if vulnerable:
        lines.append("Known advisories (bump these pins in pyproject.toml):")
        lines += [f"  {line}" for line in vulnerable]
        return 1, lines
    lines.append(
        "No known advisory." if audited else "Nothing could be audited: the service was not reached."
    )
    return 0, lines


def main() -> int:
    command = [sys.executable, "-m", "pip_audit", "--local", "--format", "json", "--progress-spinner", "off"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - a fixed argv
    try:
        report = json.loads(done.stdout)
    except ValueError:
        # pip-audit could not reach its service at all (it raises before printing a report).
        print("The advisory service could not be reached; nothing was audited.")
        print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
        return 0
    code, lines = verdict(report)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
