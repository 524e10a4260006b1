"""make audit's reading of pip-audit's report: advisories fail the run, an unreachable service does not."""

from __future__ import annotations

from scripts.audit_dependencies import verdict


def test_a_known_advisory_fails_the_run_naming_it_and_the_fixed_version() -> None:
    report = {
        "dependencies": [
            {"name": "django", "version": "5.2.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["5.2.1"]}]},
            {"name": "requests", "version": "2.34.2", "vulns": []},
        ]
    }

    code, lines = verdict(report)

    assert code == 1
    assert "  django 5.2.0: PYSEC-1 (fixed in 5.2.1)" in lines
    assert lines[0] == "Audited 2 dependencies against known advisories."


def test_dependencies_the_service_could_not_answer_for_are_listed_and_do_not_fail() -> None:
    report = {
        "dependencies": [
            {"name": "amqp", "skip_reason": "Dependency not found on PyPI and could not be audited"},
            {"name": "zipp", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ]
    }

    code, lines = verdict(report)

    assert code == 0
    assert any(line.startswith("Not audited (2)") and "amqp, zipp" in line for line in lines)
    assert lines[-1] == "Nothing could be audited: the service was not reached."


def test_clean_dependencies_pass() -> None:
    code, lines = verdict({"dependencies": [{"name": "requests", "version": "2.34.2", "vulns": []}]})
    assert code == 0 and lines[-1] == "No known advisory."
