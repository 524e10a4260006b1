"""manage.py check_registrations: one pass now, and what it found, without customer data."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from institutions.models import Branch, Institution, User
from kwikid.client import KwikIDServerError

from .conftest import KIN, FakeSearch, found, uploaded_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_timings")]


def run(*args: str) -> str:
    out = StringIO()
    call_command("check_registrations", *args, stdout=out)
    return out.getvalue()


def test_prints_counts_per_outcome_and_the_references_registered(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    registered = uploaded_record(alice, bob, branch_a, 1)
    waiting = uploaded_record(alice, bob, branch_a, 2)
    failing = uploaded_record(alice, bob, branch_a, 3)
    fake_search.answer(registered.pan, found(kyc_date=timezone.localdate()))
    fake_search.answer(failing.pan, KwikIDServerError("KwikID failed: HTTP 503", status_code=503))
    # Named by reference: searched now, though their first check is not due for ten minutes.
    out = run("--ref", registered.kyc_ref_no, "--ref", waiting.kyc_ref_no, "--ref", failing.kyc_ref_no)
    assert "Searched 3 record(s)." in out
    assert "Registered: 1" in out and "Not found yet: 1" in out and "KwikID unavailable: 1" in out
    assert f"Registered: {registered.kyc_ref_no}" in out
    for secret in (registered.pan, waiting.pan, KIN):
        assert secret not in out


def test_nothing_due_searches_nothing(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    uploaded_record(alice, bob, branch_a, 1)
    assert run() == "Searched 0 record(s).\n"
    assert not fake_search.calls


def test_limit_and_skipped_institutions_are_reported(
    fake_search: FakeSearch, institution: Institution, alice: User, bob: User, branch_a: Branch
) -> None:
    refs = [uploaded_record(alice, bob, branch_a, n).kyc_ref_no for n in range(1, 4)]
    out = run("--limit", "2", *[arg for ref in refs for arg in ("--ref", ref)])
    assert out.startswith("Searched 2 record(s).")
    institution.sending_paused_at = timezone.now()
    institution.save()
    out = run("--ref", refs[2])
    assert "Skipped Test Bank: paused, KwikID refused its token" in out


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        run("--limit", "0")
