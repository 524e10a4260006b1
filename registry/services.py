"""Following accepted records to the registry: the checking pass, its schedule and "check now".

The signatures below are the registry's contract with the pages and the worker; their bodies are built
in the registration-tracking slice that follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from institutions.models import User


@dataclass
class PassSummary:
    """What one checking pass did: counts per outcome (registry.models.Outcome values) and skips."""

    searched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # Institutions passed over and why ("paused": token refused; "cap": the day's searches are used up).
    skipped: dict[str, str] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)  # kyc_ref_no of records registered in this pass


def registrations_check(
    *, limit: int | None = None, refs: Iterable[str] | None = None, now: datetime | None = None
) -> PassSummary:
    """One pass: search for every due record (or only ``refs``, due or not), at most ``limit``."""
    raise NotImplementedError


def record_check_now(*, actor: User, record_id: int) -> None:
    """A checker or admin asks for one accepted record to be searched now (queued for the worker)."""
    raise NotImplementedError


def records_check_now(*, actor: User, record_ids: Iterable[int]) -> int:
    """An admin makes a filtered set of accepted records due now; the next pass searches them within the
    daily cap. Returns how many were made due."""
    raise NotImplementedError
