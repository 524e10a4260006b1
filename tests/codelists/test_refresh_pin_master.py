"""manage.py refresh_pin_master: from the package or a CSV file; idempotent; all or nothing; audited."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ckycportal.errors import PortalError
from codelists.models import PinCode
from codelists.pin_sources import PinSourceError, rows_from_csv
from codelists.selectors import pin_get
from institutions.models import AuditEvent

from .fixtures import FIXTURE_CSV

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("refresh_pin_master", *args, stdout=out)
    return out.getvalue()


def test_loading_a_file_replaces_the_master_and_a_second_run_changes_nothing() -> None:
    events = AuditEvent.objects.filter(action="pin_master_refreshed").count()
    first = run("--file", str(FIXTURE_CSV))
    assert "4 PINs (4 rows)" in first and "removed" in first
    assert sorted(PinCode.objects.values_list("pin", "state_name", "district")) == [
        ("110001", "DELHI", "NEW DELHI"),
        ("400001", "MAHARASHTRA", "MUMBAI"),  # "MH" in the file: a state code becomes the state's name
        ("411005", "MAHARASHTRA", "PUNE"),
        ("560001", "KARNATAKA", "BENGALURU"),
    ]
    second = run("--file", str(FIXTURE_CSV))
    assert "0 added, 0 changed, 0 removed, 4 unchanged" in second
    assert AuditEvent.objects.filter(action="pin_master_refreshed").count() == events + 2
    entry = pin_get("560001")
    assert entry is not None and entry.states == {"KA"}


def test_the_package_reload_is_idempotent() -> None:
    output = run()
    assert output.startswith("PIN master from indian-pincode 2.1.0")
    assert "0 added, 0 changed, 0 removed" in output  # the migration loaded the same data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("pin,district,state\n400001,Mumbai,MH\n40001,Mumbai,MH\n", "line 3: pin must be 6 digits"),
        ("pin,city\n400001,Mumbai\n", "the header must name the columns pin, district, state"),
        ("pin,district,state\n", "holds no PIN"),
    ],
)
def test_a_bad_file_changes_nothing_and_says_where(tmp_path: Path, content: str, message: str) -> None:
    before = PinCode.objects.count()
    path = tmp_path / "pins.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run("--file", str(path))
    assert PinCode.objects.count() == before


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pins.csv"
    path.write_bytes("pin,district,state\n400001,Mumbaï,MH\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run("--file", str(path))


def test_an_unreadable_source_is_a_portal_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pins.csv"
    path.write_text("pin,city\n400001,Mumbai\n", encoding="utf-8")
    with pytest.raises(PinSourceError) as refused:
        list(rows_from_csv(path, state_names={}))
    assert isinstance(refused.value, PortalError)
    assert refused.value.message.startswith("pins.csv")
