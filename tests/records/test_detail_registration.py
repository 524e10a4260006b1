"""The record page's registration: waiting since KwikID's acceptance with its checks, or the KIN found."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from institutions.models import Branch, Institution, Role, User
from records.models import KycRecord
from registry.models import Outcome, RegistryCheck
from tests.conftest import make_user, new_record, otp_login
from tests.records.registration import accepted, registered

pytestmark = pytest.mark.django_db

KIN = "60012345678901"


def client_for(user: User) -> Client:
    client = Client()
    otp_login(client, user)
    return client


def page(client: Client, record: KycRecord) -> str:
    response = client.get(reverse("records:detail", args=[record.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_registered_record_shows_its_kin_masked_and_how_it_was_found(alice: User, branch_a: Branch) -> None:
    record = registered(
        new_record(alice, branch_a), KIN, kyc_date=date(2026, 11, 25), note="CKYC search, nested answer"
    )

    html = page(client_for(alice), record)

    assert "Registered at CKYCR" in html
    assert "XXXXXXXXXX8901" in html and KIN not in html
    assert "25 Nov 2026" in html
    assert f"{timezone.localtime(record.registered_at):%d %b %Y %H:%M}" in html  # type: ignore[arg-type]
    assert "CKYC search, nested answer" in html
    assert "Registered at CKYCR before upload" not in html
    assert "Check now" not in html


def test_the_kin_is_shown_in_clear_once_the_record_is_revealed(alice: User, branch_a: Branch) -> None:
    record = registered(new_record(alice, branch_a), KIN)
    client = client_for(alice)

    client.post(reverse("records:reveal", args=[record.pk]))

    assert f'id="kin">{KIN}<' in page(client, record)


def test_an_auditor_sees_the_kin_masked(alice: User, branch_a: Branch, institution: Institution) -> None:
    record = registered(new_record(alice, branch_a), KIN)
    client = client_for(make_user("ivan", Role.AUDITOR))

    client.post(reverse("records:reveal", args=[record.pk]))  # refused: auditors see PII masked

    html = page(client, record)
    assert "XXXXXXXXXX8901" in html and KIN not in html


def test_a_record_registered_before_upload_asks_for_a_persons_look(alice: User, branch_a: Branch) -> None:
    record = registered(new_record(alice, branch_a), KIN, preexisting=True, kyc_date=date(2019, 6, 3))

    html = page(client_for(alice), record)

    assert "Registered at CKYCR before upload" in html
    assert "A person should look" in html
    assert "03 Jun 2019" in html
    assert "alert-warning" in html[html.index('id="registration"') - 80 : html.index('id="registration"')]


def test_a_waiting_record_says_how_long_and_offers_check_now_to_its_checker(
    alice: User, bob: User, branch_a: Branch
) -> None:
    record = accepted(new_record(alice, branch_a), days_ago=4)

    html = page(client_for(bob), record)

    assert "Accepted by KwikID 4 days ago, waiting for the registry" in html
    assert "Not searched yet" in html
    assert f'action="{reverse("registry:check_record", args=[record.pk])}"' in html


def test_a_waiting_record_shows_its_last_and_next_check(alice: User, erin: User, branch_a: Branch) -> None:
    record = accepted(new_record(alice, branch_a), days_ago=1)
    last = timezone.now() - timedelta(hours=2)
    upcoming = timezone.now() + timedelta(hours=6)
    RegistryCheck.objects.create(
        record=record,
        institution=branch_a.institution,
        checks_made=3,
        last_checked_at=last,
        last_outcome=Outcome.NOT_FOUND,
        next_check_at=upcoming,
    )

    html = page(client_for(erin), record)

    assert "Accepted by KwikID yesterday" in html
    assert f"Last checked {timezone.localtime(last):%d %b %Y %H:%M}: not found yet." in html
    assert f"Next check {timezone.localtime(upcoming):%d %b %Y %H:%M}." in html
    assert reverse("registry:check_record", args=[record.pk]) in html  # admins may check too


def test_a_record_whose_checks_ran_out_says_a_person_should_follow_it_up(
    alice: User, branch_a: Branch
) -> None:
    record = accepted(new_record(alice, branch_a), days_ago=40)
    RegistryCheck.objects.create(
        record=record,
        institution=branch_a.institution,
        checks_made=12,
        last_checked_at=timezone.now() - timedelta(days=10),
        last_outcome=Outcome.NOT_FOUND,
        gave_up_at=timezone.now() - timedelta(days=10),
    )

    html = page(client_for(alice), record)

    assert "Accepted by KwikID 40 days ago" in html
    assert "Checks stopped" in html and "after 12 searches" in html


def test_makers_and_auditors_get_no_check_now(
    alice: User, branch_a: Branch, institution: Institution
) -> None:
    record = accepted(new_record(alice, branch_a))
    check_url = reverse("registry:check_record", args=[record.pk])

    assert "Accepted by KwikID today" in page(client_for(alice), record)
    assert check_url not in page(client_for(alice), record)
    assert check_url not in page(client_for(make_user("ivan", Role.AUDITOR)), record)


def test_a_registered_record_is_no_longer_overdue(alice: User, branch_a: Branch) -> None:
    verified = timezone.localdate() - timedelta(days=30)
    waiting = accepted(new_record(alice, branch_a, 1, kyc_verification_date=verified))
    done = registered(new_record(alice, branch_a, 2, kyc_verification_date=verified), KIN)
    client = client_for(alice)

    assert "Overdue since" in page(client, waiting)
    assert "Overdue since" not in page(client, done)
