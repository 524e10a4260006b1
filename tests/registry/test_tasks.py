"""The registry's Celery task: a thin call of the pass, queued by beat every REGISTRY_CHECK_EVERY_SECONDS."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from ckycportal.celery import app
from institutions.models import Branch, User
from records.models import Status
from registry import tasks

from .conftest import FakeSearch, found, uploaded_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_timings")]


def test_beat_runs_the_registered_pass_task() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["registrations-check"]
    assert entry["schedule"] == float(settings.REGISTRY_CHECK_EVERY_SECONDS)
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_the_task_checks_the_records_asked_for_and_notes_who_asked(
    fake_search: FakeSearch, alice: User, bob: User, branch_a: Branch
) -> None:
    record = uploaded_record(alice, bob, branch_a, 1)
    other = uploaded_record(alice, bob, branch_a, 2)
    fake_search.answer(record.pan, found(kyc_date=timezone.localdate()))
    result = tasks.registrations_check(record_ids=[record.pk], asked_by_id=bob.pk)
    assert result["searched"] == 1 and fake_search.calls[other.pan] == 0
    record.refresh_from_db()
    assert record.status == Status.REGISTERED
    assert "asked for by bob" in record.registration_note
    # Run twice: nothing more to do.
    assert tasks.registrations_check(record_ids=[record.pk], asked_by_id=bob.pk)["searched"] == 0
