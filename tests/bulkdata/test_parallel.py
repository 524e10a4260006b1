"""Rows prepared in worker processes (PostgreSQL, files longer than a chunk) give the import that preparing
them in order in this process gives: the same records, events, tokens, problems, row numbers and progress."""

from __future__ import annotations

import io
import multiprocessing
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bulkdata import engine
from bulkdata.engine import records_import
from bulkdata.parsers import FileRefused, RawRow
from codelists.codes import STATIC_CODE_BOOK
from institutions.models import Branch, User
from records.models import KycRecord, RecordEvent, RecordNameToken
from records.services import record_data
from tests.bulkdata.helpers import csv_bytes, json_body, rows, xlsx_bytes

pytestmark = pytest.mark.django_db

VOLATILE = {"id", "kyc_ref_no", "created_at", "updated_at", "submitted_at", "pan", "pan_hash"}


def records_file(prefix: str) -> list[dict[str, Any]]:
    records = rows(9, prefix)
    for record in records:
        record["pan"] = prefix + record["pan"][3:]  # no PAN of another run's records
    records[2]["gender"] = "X"  # an error
    records[5]["kyc_ref_no"] = f"{prefix}-00002"  # repeats row 3
    records[6]["pan"] = records[0]["pan"]  # a warning
    records[7]["kyc_verifier_name"] = "R\\K SHARMA"  # a backslash: escaped in COPY's text format
    return records


def run(
    prefix: str, alice: User, branch_a: Branch, data: bytes | None = None
) -> tuple[list[Any], list[int], Any]:
    problems: list[Any] = []
    progress: list[int] = []
    outcome = records_import(
        actor=alice,
        branch=branch_a,
        opener=lambda: io.BytesIO(data or csv_bytes(records_file(prefix))),
        save=True,
        only_valid=True,
        submit=True,
        on_problems=lambda row, found: problems.append((row, [(p.field, p.severity) for p in found])),
        progress=progress.append,
    )
    return problems, progress, outcome


def stored(prefix: str) -> list[dict[str, Any]]:
    found = []
    for record in KycRecord.objects.filter(kyc_ref_no__startswith=prefix).order_by("pk"):
        found.append(
            {
                **{f.attname: getattr(record, f.attname) for f in KycRecord._meta.concrete_fields}
                | {name: None for name in VOLATILE},
                "events": list(
                    RecordEvent.objects.filter(record=record)
                    .order_by("created_at", "pk")
                    .values_list("action", "from_status", "to_status", "actor_id", "reason")
                ),
                "tokens": sorted(
                    RecordNameToken.objects.filter(record=record).values_list("token_hash", flat=True)
                ),
            }
        )
    return found


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Chunks of 2 rows, 2 workers; each process that prepares a row writes its id to a file."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 2)
    monkeypatch.setattr(engine, "POOL_WORKERS", 2)
    pids = tmp_path / "pids"
    prepare = engine.prepare

    def prepare_and_tell(*args: Any, **kwargs: Any) -> Any:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return prepare(*args, **kwargs)

    monkeypatch.setattr(engine, "prepare", prepare_and_tell)
    return pids


def test_rows_prepared_by_workers_import_as_rows_prepared_in_order(
    workers: Path, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_workers = run("PAR", alice, branch_a)
    assert str(os.getpid()) not in workers.read_text().split()  # every row went to a worker
    workers.unlink()
    monkeypatch.setattr(engine, "POOL_WORKERS", 1)
    in_order = run("SER", alice, branch_a)
    assert set(workers.read_text().split()) == {str(os.getpid())}

    assert in_workers[:2] == in_order[:2]  # problems by row, in order, and progress
    assert in_workers[2] == in_order[2]
    assert in_workers[2].created == 7
    assert stored("PAR") == stored("SER")
    assert KycRecord.objects.get(kyc_ref_no="PAR-00008").kyc_verifier_name == "R\\K SHARMA"


def test_a_bad_line_late_in_the_file_is_reported_after_the_rows_before_it(
    workers: Path, alice: User, branch_a: Branch, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = csv_bytes(records_file("BAD")) + b"a,b" + b",c" * 60 + b"\r\n"

    def check() -> tuple[str, list[int]]:
        found: list[int] = []
        with pytest.raises(FileRefused) as refused:
            records_import(
                actor=alice,
                branch=branch_a,
                opener=lambda: io.BytesIO(data),
                save=False,
                on_problems=lambda row, problems: found.append(row),
            )
        return str(refused.value), found

    in_workers = check()
    assert str(os.getpid()) not in workers.read_text().split()
    monkeypatch.setattr(engine, "POOL_WORKERS", 1)
    assert in_workers == check()
    assert in_workers[0].startswith("Row 11 has 62 cells")
    assert in_workers[1] == [4, 7, 8]


def test_rows_are_prepared_by_workers_in_a_celery_prefork_child_too(workers: Path) -> None:
    """A prefork worker's child is daemonic, and multiprocessing refuses such a process children."""
    raws = [RawRow(n, {**record, "kyc_ref_no": f"D-{n}"}) for n, record in enumerate(rows(5), start=2)]
    stage = engine._Stage(
        today=date.today(), codes=STATIC_CODE_BOOK, warnings_block=False, lines=None, keep_values=False
    )
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        try:
            chunks = engine._prepared_chunks(raws, stage, parallel=True)
            results.put([[(row.number, row.ref_key, row.blocked) for row in chunk] for chunk in chunks])
        except BaseException as exc:  # reported to the test
            results.put(repr(exc))

    process = context.Process(target=child, daemon=True)
    process.start()
    found = results.get(timeout=60)
    process.join(timeout=60)
    assert found == [
        [(2, "D-2", False), (3, "D-3", False)],
        [(4, "D-4", False), (5, "D-5", False)],
        [(6, "D-6", False)],
    ]
    assert str(process.pid) not in workers.read_text().split()  # its workers prepared them


@pytest.mark.parametrize("make", [xlsx_bytes, json_body], ids=["xlsx", "json"])
def test_workbooks_and_json_bodies_are_prepared_by_workers_too(
    make: Any, workers: Path, alice: User, branch_a: Branch
) -> None:
    """Their cells are typed (dates, numbers) and JSON rows carry notes: all cross to the workers."""
    records = rows(5)
    data = make(records)
    outcome = records_import(actor=alice, branch=branch_a, opener=lambda: io.BytesIO(data), save=True)
    assert (outcome.rows, outcome.invalid, outcome.created) == (5, 0, 5)
    assert str(os.getpid()) not in workers.read_text().split()
    assert record_data(KycRecord.objects.get(kyc_ref_no="IMP-00004")) == records[3]
