"""manage.py import_records: all or nothing, exit status, one line per problem, a one-line summary."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from institutions.models import AuditEvent, Branch, User
from records.models import KycRecord, RecordEvent, Status
from tests.bulkdata.helpers import csv_bytes, rows

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, list[str]]:
    out = StringIO()
    try:
        call_command("import_records", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue().splitlines()


def test_valid_file_is_imported_as_drafts_with_audit(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    path = write_file(csv_bytes(rows(3)))
    code, lines = run(str(path), "--branch", "BRA", "--as", "alice")
    assert code == 0
    assert lines == ["3 rows: 3 valid, 0 invalid (0 errors, 0 warnings); 3 records created"]
    records = KycRecord.objects.filter(kyc_ref_no__startswith="IMP-")
    assert records.count() == 3
    assert set(records.values_list("status", flat=True)) == {Status.DRAFT}
    assert RecordEvent.objects.filter(record__in=records, action="created", actor=alice).count() == 3
    assert AuditEvent.objects.filter(action="import_done", actor=alice).count() == 1


def test_submit_flag_submits_each_record(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    path = write_file(csv_bytes(rows(2)))
    code, _ = run(str(path), "--branch", "bra", "--as", "alice", "--submit")
    assert code == 0
    records = KycRecord.objects.filter(kyc_ref_no__startswith="IMP-")
    assert set(records.values_list("status", "submitted_by")) == {(Status.SUBMITTED, alice.pk)}
    actions = list(
        RecordEvent.objects.filter(record=records[0]).values_list("action", "from_status", "to_status")
    )
    assert actions == [("created", "", "draft"), ("submitted", "draft", "submitted")]


def test_one_invalid_row_saves_nothing_and_prints_each_problem(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    records = rows(4)
    records[1]["pan"] = "ABCDE1234F"  # 4th letter must be P
    records[3]["poa_pin_code"] = "012345"
    records[3]["dob"] = None
    code, lines = run(str(write_file(csv_bytes(records))), "--branch", "BRA", "--as", "alice")
    assert code == 1
    assert lines[0].startswith("row 3 pan: PAN must be")
    assert lines[1] == "row 5 dob: Date of birth is required"
    assert lines[2].startswith("row 5 poa_pin_code: PIN code must be 6 digits")
    assert lines[-1] == "4 rows: 2 valid, 2 invalid (3 errors, 0 warnings); nothing saved"
    assert not KycRecord.objects.exists()
    assert not RecordEvent.objects.exists()


def test_valid_only_saves_the_valid_rows(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    records = rows(3)
    records[0]["gender"] = "X"
    code, lines = run(str(write_file(csv_bytes(records))), "--branch", "BRA", "--as", "alice", "--valid-only")
    assert code == 0
    assert lines[-1] == "3 rows: 2 valid, 1 invalid (1 errors, 0 warnings); 2 records created"
    assert sorted(KycRecord.objects.values_list("kyc_ref_no", flat=True)) == ["IMP-00002", "IMP-00003"]


def test_dry_run_saves_nothing(write_file: Callable[..., Path], alice: User, branch_a: Branch) -> None:
    code, lines = run(str(write_file(csv_bytes(rows(2)))), "--branch", "BRA", "--as", "alice", "--dry-run")
    assert code == 0
    assert lines == ["2 rows: 2 valid, 0 invalid (0 errors, 0 warnings); dry run, nothing saved"]
    assert not KycRecord.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="import").exists()


def test_dry_run_with_problems_exits_1(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    records = rows(1, gender="Q")
    code, lines = run(str(write_file(csv_bytes(records))), "--branch", "BRA", "--as", "alice", "--dry-run")
    assert code == 1
    assert lines[0].startswith("row 2 gender: Gender must be")


def test_bad_file_prints_the_reason_and_exits_1(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    code, lines = run(str(write_file(b"")), "--branch", "BRA", "--as", "alice")
    assert code == 1
    assert lines == ["file: The file is empty.", "0 rows imported; nothing saved"]


@pytest.mark.parametrize("who", ["bob", "mallory"])
def test_actor_must_be_a_maker_of_the_branch(
    who: str, write_file: Callable[..., Path], alice: User, bob: User, mallory: User, branch_a: Branch
) -> None:
    path = write_file(csv_bytes(rows(1)))
    if who == "mallory":  # a maker, of branch B
        with pytest.raises(CommandError, match="does not work at branch BRA"):
            run(str(path), "--branch", "BRA", "--as", who)
    else:  # a checker of branch A
        code, lines = run(str(path), "--branch", "BRA", "--as", who)
        assert code == 1
        assert lines[0] == "file: Only compliance staff (makers) import KYC records."
    assert not KycRecord.objects.exists()


def test_unknown_branch_and_user_are_refused(write_file: Callable[..., Path], alice: User) -> None:
    path = write_file(csv_bytes(rows(1)))
    with pytest.raises(CommandError, match="No branch with code 'NOPE'"):
        run(str(path), "--branch", "NOPE", "--as", "alice")
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        run(str(path), "--branch", "BRA", "--as", "nobody")


def test_a_nul_in_a_cell_is_one_line_naming_its_row_and_column_and_nothing_is_saved(
    write_file: Callable[..., Path], alice: User, branch_a: Branch
) -> None:
    records = rows(12)
    records[10]["poa_vtc"] = "Mum\x00bai"  # row 12 of the sheet
    code, lines = run(str(write_file(csv_bytes(records))), "--branch", "BRA", "--as", "alice")
    assert code == 1
    assert "row 12 poa_vtc: a control character (U+0000) is not allowed" in lines
    assert not KycRecord.objects.exists()
