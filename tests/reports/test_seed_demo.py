"""seed_demo: make run's living demo, made through the services and dated over the last three weeks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from institutions.models import Institution, User
from kwikid_standin import StandIn
from records.models import KycRecord, RecordEvent, Status
from reports.dashboard import dashboard_get
from reports.demo import _moment
from tests.conftest import PASSWORD
from uploads import services as upload_services
from uploads.models import BatchItem, BatchStatus, UploadBatch

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def demo_portal(tmp_path: Path, settings: Any) -> Iterator[Institution]:
    """make run's demo institution, branches and users (setup_demo), its KwikID address a free local port."""
    settings.DEBUG = True
    cache.clear()
    token = tmp_path / "token"
    token.write_text("demo-token-0123456789", encoding="utf-8")
    call_command(
        "setup_demo",
        api_base_url=f"http://127.0.0.1:{free_port()}",
        token_file=str(token),
        password=PASSWORD,
        stdout=StringIO(),
    )
    yield Institution.objects.get(fi_code="DEMO01")


def seed(**options: Any) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def send_approved(institution: Institution) -> None:
    """What make run's worker does with the approved records: batch them and send them to KwikID."""
    port = int(institution.api_base_url.rsplit(":", 1)[1])
    with StandIn(port=port, token=institution.api_token):
        for batch_id in upload_services.batch_assemble(institution_id=institution.pk):
            upload_services.batch_send(batch_id=batch_id, enqueue=lambda _id, _delay: None)


def test_demo_has_records_in_every_state_in_both_branches_kwikid_answers_and_a_living_dashboard(
    demo_portal: Institution,
) -> None:
    out = seed()

    records = KycRecord.objects.filter(branch__institution=demo_portal)
    assert records.count() == 150
    by_status = {status: records.filter(status=status).count() for status in Status.values}
    assert all(by_status.values()), by_status
    for code in ("MUM001", "DEL001"):
        assert records.filter(branch__code=code).count() >= 30
    assert "Seeded 150 demo records" in out and "Waiting for review" in out

    # The figures and both charts of the checker's dashboard have something to show.
    board = dashboard_get(User.objects.get(username="checker"))
    assert all(board.counts.values()), board.counts
    assert board.uploaded_today and board.overdue and board.due_soon
    assert board.accepted_30d and board.rejected_30d
    assert sum(1 for day in board.daily if day["accepted"]) >= 7
    assert board.last_batch is not None

    # KwikID's answers of every kind: one record rejected naming a field, one batch's answer lost.
    rejected = KycRecord.objects.get(status=Status.REJECTED)
    assert "applicant_first_name" in rejected.upload_message
    assert UploadBatch.objects.filter(status=BatchStatus.REJECTED).count() == 1
    unknown = UploadBatch.objects.get(status=BatchStatus.UNKNOWN)
    assert unknown.items.filter(outcome=BatchItem.Outcome.UNKNOWN).exists()
    assert set(unknown.items.values_list("record__status", flat=True)) == {Status.BATCHED}
    assert UploadBatch.objects.filter(status=BatchStatus.ACCEPTED).count() >= 10
    # Registered records carry the registry's KIN and a KYC date on or after their upload.
    registered = KycRecord.objects.filter(status=Status.REGISTERED)
    assert registered.exists()
    for record in registered:
        assert len(record.ckyc_number) == 14 and record.ckyc_number.isdigit()
        assert record.registry_kyc_date >= timezone.localdate(record.uploaded_at)
    assert KycRecord.objects.filter(status=Status.PREEXISTING).count() == 1


def test_demo_history_is_the_services_own_spread_over_three_weeks_in_order(demo_portal: Institution) -> None:
    seed()

    now, today = timezone.now(), timezone.localdate()
    events = RecordEvent.objects.filter(record__branch__institution=demo_portal)
    days = {timezone.localdate(at) for at in events.values_list("created_at", flat=True)}
    assert min(days) <= today - timedelta(days=18) and max(days) == today
    assert len(days) >= 18
    assert not events.filter(created_at__gt=now).exists()
    # Every record was entered by the demo maker, and every decision made by the demo checker.
    maker, checker = User.objects.get(username="maker"), User.objects.get(username="checker")
    assert set(events.filter(action=RecordEvent.Action.CREATED).values_list("actor", flat=True)) == {maker.pk}
    assert set(
        events.filter(action__in=(RecordEvent.Action.APPROVED, RecordEvent.Action.RETURNED)).values_list(
            "actor", flat=True
        )
    ) == {checker.pk}
    assert events.filter(action=RecordEvent.Action.CREATED).count() == 150
    # A record's history runs forward: each event after the one before.
    for record in KycRecord.objects.filter(branch__institution=demo_portal):
        moments = list(record.events.order_by("pk").values_list("created_at", flat=True))
        assert moments == sorted(moments), record.kyc_ref_no
        assert record.created_at == moments[0]
    # Some records were returned, fixed and submitted again before their approval.
    assert events.filter(action=RecordEvent.Action.EDITED).exists()
    assert all(r.return_reason for r in KycRecord.objects.filter(status=Status.RETURNED))
    # The deadline clock: some records waiting for review are overdue, some due soon.
    waiting = KycRecord.objects.filter(status=Status.SUBMITTED)
    assert {r.due_state for r in waiting} >= {"overdue", "due_soon"}


def test_seeding_again_adds_more_records_once_the_approved_ones_are_sent(demo_portal: Institution) -> None:
    seed(records=20)
    assert KycRecord.objects.count() == 20

    # Approved records still waiting would join the seed's back-dated batches: refused, with what to do.
    with pytest.raises(CommandError, match=r"approved record\(s\) of the demo institution wait for upload"):
        seed(records=20)
    assert KycRecord.objects.count() == 20

    send_approved(demo_portal)
    out = seed(records=25)

    assert KycRecord.objects.count() == 45
    assert "Seeded 25 demo records" in out
    refs = sorted(KycRecord.objects.values_list("kyc_ref_no", flat=True))
    assert len(set(refs)) == 45
    assert {ref.rsplit("/", 1)[1] for ref in refs} == {f"{n:05d}" for n in range(1, 46)}


def test_make_run_seeds_only_a_portal_without_records(demo_portal: Institution) -> None:
    seed(records=20, if_empty=True)
    assert KycRecord.objects.count() == 20

    send_approved(demo_portal)
    assert seed(if_empty=True) == ""
    assert KycRecord.objects.count() == 20


def test_seed_refuses_without_debug(demo_portal: Institution, settings: Any) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DJANGO_DEBUG=true"):
        seed(records=20)
    assert not KycRecord.objects.exists()


def test_seed_refuses_while_the_portal_runs(demo_portal: Institution) -> None:
    port = int(demo_portal.api_base_url.rsplit(":", 1)[1])
    with socket.socket() as running:  # make run's stand-in holds the demo's KwikID port
        running.bind(("127.0.0.1", port))
        running.listen()
        with pytest.raises(CommandError, match=f"Port {port} is in use"):
            seed(records=20)
    assert not KycRecord.objects.exists()


def test_seed_refuses_an_institution_that_sends_elsewhere(demo_portal: Institution) -> None:
    Institution.objects.filter(pk=demo_portal.pk).update(api_base_url="https://kwikid.example.com")

    with pytest.raises(CommandError, match="sends only to the stand-in on this machine"):
        seed(records=20)


def test_seed_refuses_without_the_demo_institution(settings: Any) -> None:
    settings.DEBUG = True

    with pytest.raises(CommandError, match="no demo institution yet"):
        seed(records=20)


def test_seed_refuses_too_few_records(demo_portal: Institution) -> None:
    with pytest.raises(CommandError, match="at least 20"):
        seed(records=5)


@pytest.mark.parametrize("hour, minute", [(0, 2), (8, 0), (12, 30), (23, 50)])
def test_todays_steps_fall_before_now_however_early_the_seed_runs(hour: int, minute: int) -> None:
    now = timezone.make_aware(datetime(2026, 12, 2, hour, minute))
    midnight = timezone.make_aware(datetime(2026, 12, 2))

    moments = [_moment(0, fraction, now) for fraction in (0.05, 0.5, 0.8, 0.9, 0.95)]

    assert moments == sorted(moments)
    assert midnight < moments[0] and moments[-1] < now
    # Earlier days keep office hours, and so does today once they are over.
    assert timezone.localtime(_moment(3, 0.8, now)).hour == 17
    if hour >= 19:
        assert all(9 <= timezone.localtime(moment).hour < 19 for moment in moments)
