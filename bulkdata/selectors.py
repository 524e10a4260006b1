"""Reads for the import and export pages. An import job is its uploader's alone (it holds their file)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from institutions.models import User
from records.validation import contains_aadhaar

from .models import ImportJob, ImportProblem
from .parsers import COLUMNS, read_rows
from .services import job_opener


def job_list(user: User) -> QuerySet[ImportJob]:
    """The user's own import jobs, newest first."""
    return ImportJob.objects.filter(created_by=user).select_related("branch")


def job_get(user: User, pk: int) -> ImportJob:
    """One of the user's import jobs, or 404 (another user's job does not exist for them)."""
    return get_object_or_404(job_list(user), pk=pk)


def job_problems(job: ImportJob) -> QuerySet[ImportProblem]:
    return job.problems.order_by("row", "id")


ERROR_HEADER: tuple[str, ...] = (*COLUMNS, "errors")


def _without_aadhaar(value: Any) -> Any:
    # The error file leaves the portal: a full Aadhaar number in a cell is blanked (its problem says so).
    return "" if isinstance(value, str) and contains_aadhaar(value) else value


def job_error_rows(job: ImportJob) -> Iterator[list[Any]]:
    """The file's invalid rows as they were uploaded, each with an ``errors`` cell saying what to fix.

    Streams: the file is read again and merged with the stored problems, both in row order.
    """
    problems = (
        job.problems.filter(severity="error").order_by("row", "id").values_list("row", "field", "message")
    )
    grouped = groupby(problems.iterator(chunk_size=2_000), key=lambda p: p[0])
    pending = next(grouped, None)
    if pending is None:
        return
    for raw in read_rows(job_opener(job), job.filename):
        while pending is not None and pending[0] < raw.number:
            pending = next(grouped, None)
        if pending is None:
            return
        if pending[0] == raw.number:
            errors = "; ".join(f"{field}: {message}" for _row, field, message in pending[1])
            yield [_without_aadhaar(raw.values.get(name, "")) for name in COLUMNS] + [errors]
